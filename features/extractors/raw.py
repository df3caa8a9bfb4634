"""Raw pixels: the baseline "feature" every handcrafted descriptor has to beat.

Grayscale images give H*W values; RGB images (``data.channels: 3``) their H*W*3 values,
ordered (row, column, channel): the same pixels the CNNs get.
"""
from __future__ import annotations

import numpy as np

from features import Extractor
from features._batch import ImageFeatureExtractor, check_bool


class RawPixels(ImageFeatureExtractor):
    """Flattened pixels, row-major (then R, G, B for a colour image), as float32 (divided by 255
    when ``scale``).

    Parameters
    ----------
    scale : bool
        Map 0-255 to [0, 1].
    n_jobs, chunk_size : int
        joblib workers and images per chunk (see ``features._batch``); shared by every
        extractor, though raw pixels hardly need them.
    """

    keeps_colour = True

    def __init__(self, scale=True, n_jobs=1, chunk_size=2048):
        self.scale = scale
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        check_bool(type(self).__name__, "scale", self.scale)

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        flat = images.reshape(len(images), -1).astype(np.float32)
        return flat / np.float32(255) if self.scale else flat


EXTRACTOR = Extractor(
    transformer=RawPixels,
    citation=(
        'Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied to document '
        'recognition", Proc. IEEE 86(11), 1998, doi:10.1109/5.726791 (classifiers on raw pixels as baselines)'
    ),
    summary="raw pixels / 255 (RGB on colour data), flattened: the baseline every handcrafted feature has to beat",
)

"""features.extractors.hog must equal skimage.feature.hog (the reference) to 1e-5, on grayscale
images and, with ``channel_axis=-1`` (the strongest channel's gradient per pixel), on RGB ones."""
from __future__ import annotations


import numpy as np
import pytest
from skimage.feature import hog

from features.errors import ImageError, ParameterError
from features.extractors.hog import HOGFeatures

PARAMETER_SETS = [
    {"orientations": 9, "pixels_per_cell": (4, 4), "cells_per_block": (2, 2), "block_norm": "L2-Hys"},
    {"orientations": 8, "pixels_per_cell": (7, 7), "cells_per_block": (2, 2), "block_norm": "L1"},
    {"orientations": 12, "pixels_per_cell": (4, 6), "cells_per_block": (3, 1), "block_norm": "L2", "transform_sqrt": True},
    {"orientations": 6, "pixels_per_cell": (5, 3), "cells_per_block": (1, 2), "block_norm": "L1-sqrt"},
    {"orientations": 4, "pixels_per_cell": [3, 3], "cells_per_block": [3, 3], "block_norm": "L2-Hys", "transform_sqrt": True},
]


def skimage_hog(images: np.ndarray, params: dict) -> np.ndarray:
    kwargs = dict(params, pixels_per_cell=tuple(params["pixels_per_cell"]), cells_per_block=tuple(params["cells_per_block"]))
    channel_axis = -1 if images.ndim == 4 else None
    return np.stack([hog(image, feature_vector=True, channel_axis=channel_axis, **kwargs) for image in images])


def assert_matches_skimage(images: np.ndarray, params: dict) -> None:
    ours = HOGFeatures(**params).fit_transform(images)
    reference = skimage_hog(images, params)
    assert ours.shape == reference.shape
    assert ours.dtype == np.float32
    assert np.abs(ours - reference).max() <= 1e-5


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_matches_skimage_on_random_images(rng, params):
    assert_matches_skimage(rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), params)


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_matches_skimage_on_flat_and_stepped_images(rng, params):
    # Few grey levels: many zero gradients and angles exactly on a bin edge (0, 45, 90, 135).
    images = (rng.integers(0, 3, (40, 23, 30)) * 100).astype(np.uint8)
    images[0] = 0
    assert_matches_skimage(images, params)


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_matches_skimage_on_fashion_mnist(fashion_test_images, params):
    images, _ = fashion_test_images
    assert_matches_skimage(images[::50], params)


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_matches_skimage_on_random_colour_images(rng, params):
    assert_matches_skimage(rng.integers(0, 256, (20, 28, 30, 3), dtype=np.uint8), params)


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_matches_skimage_on_stepped_colour_images(rng, params):
    # Few levels per channel: many pixels where two or three channels tie for the largest
    # magnitude with different directions; scikit-image then takes the first channel.
    images = (rng.integers(0, 3, (20, 23, 30, 3)) * 100).astype(np.uint8)
    images[1] = images[1, ..., :1]  # a gray image given as RGB
    assert_matches_skimage(images, params)


def test_default_layout_on_28x28(rng):
    features = HOGFeatures().fit_transform(rng.integers(0, 256, (3, 28, 28), dtype=np.uint8))
    assert features.shape == (3, 6 * 6 * 2 * 2 * 9)


def test_image_smaller_than_one_block():
    with pytest.raises(ImageError, match=r"images are 7x9, smaller than the 8x8 minimum for "
                                        r"pixels_per_cell=\[4, 4\] and cells_per_block=\[2, 2\]"):
        HOGFeatures(pixels_per_cell=[4, 4], cells_per_block=[2, 2]).fit(np.zeros((2, 7, 9), np.uint8))


def test_exactly_one_block(rng):
    assert_matches_skimage(rng.integers(0, 256, (5, 8, 8), dtype=np.uint8), PARAMETER_SETS[0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"block_norm": "L3"}, r"block_norm='L3' is invalid; allowed: 'L1', 'L1-sqrt', 'L2', 'L2-Hys'"),
        ({"pixels_per_cell": (4, 0)}, r"pixels_per_cell=\(4, 0\) is invalid"),
        ({"cells_per_block": 2}, r"cells_per_block=2 is invalid"),
        ({"orientations": 0}, r"orientations=0 is invalid"),
        ({"transform_sqrt": "yes"}, r"transform_sqrt='yes' is invalid"),
        ({"chunk_size": 0}, r"chunk_size=0 is invalid"),
        ({"n_jobs": 0}, r"n_jobs=0 is invalid"),
    ],
)
def test_invalid_parameters(params, message):
    with pytest.raises(ParameterError, match=message):
        HOGFeatures(**params).fit(np.zeros((1, 28, 28), np.uint8))

"""Several extractors' features side by side: early fusion of complementary descriptors.

Each image's vector is the concatenation, in ``parts`` order, of what each part extractor
computes for it (like scikit-learn's ``FeatureUnion``, but over image batches and chunked
once for all parts). HOG describes local edge orientation with its contrast normalised
away, Sobel's magnitude maps keep where the strong edges are, and raw pixels keep
intensity and shape; concatenated and reduced by PCA they give an RBF SVM more than any one
of them (Fashion-MNIST, README "Large data": PCA 200 + RBF SVM reach 92.60 % on HOG with
square-root compression + Sobel + raw pixels vs 91.65 % on HOG alone).

With ``balance`` each part is divided by the root-mean-square deviation of its features over the
training images (one number per part, learned in ``fit``), so every part weighs the same per
dimension in a Euclidean distance. That is what an RBF kernel or k-NN on the stack sees when
the classifier does not standardise each dimension itself (``classical.scale: none``): HOG's
block-normalised values and raw pixels in [0, 1] then enter at comparable scale without
standardisation blowing up near-constant dimensions (border pixels, empty HOG cells). MNIST,
deskewed, PCA 150 + RBF SVM: 99.26 % balanced and unstandardised, 99.11 % unstandardised but
unbalanced, 98.58 % standardised (README "Large data").

Each part is built from its own settings, ``sections[part]`` (the features stage passes every
extractor's params.yaml section, ``features.<part>``; a part without one starts from its
extractor's defaults), with ``overrides[part]`` replacing keys of it one by one: the default
stack is params.yaml's HOG, Sobel and raw sections with HOG's ``transform_sqrt`` switched on.
``random_state`` is handed to the parts that take one (SIFT's codebook).

Colour: the stack takes RGB batches as they are and gives each part what it would get
alone: the parts that keep colour (``keeps_colour``: raw, HOG, Sobel...) the RGB images, the
others their grayscale conversion (computed once per chunk).

DVC caveat: ``features@stack`` depends on this module and its own params section
(``features.stack``, overrides included), not on the parts' modules nor on their sections:
dvc.yaml gives every ``features@<name>`` the same template (its own module, its own section),
and DVC can neither interpolate a list of params keys per item nor nest ``${...}``. After
editing a part's code or section, e.g. ``hog.py`` or ``features.hog``, with ``stack`` in
``features.names``, rerun it with ``dvc repro -f features@stack`` (and the classifiers on it).

Reference
---------
C. G. M. Snoek, M. Worring, A. W. M. Smeulders, "Early versus late fusion in semantic video
analysis", ACM Multimedia 2005, doi:10.1145/1101149.1101236.
"""
from __future__ import annotations

import inspect

import numpy as np

from features import Extractor, extractor_names, get_extractor, make_extractor
from features._batch import ImageFeatureExtractor, check_bool, check_int, to_gray
from features.errors import ParameterError

NAME = "stack"


class StackedFeatures(ImageFeatureExtractor):
    """The features of ``parts`` concatenated per image, float32.

    Parameters
    ----------
    parts : list of str
        Registered extractor names, at least one, no repeats, not ``stack`` itself.
    overrides : dict or None
        ``{part: {parameter: value}}``: keys replacing those of the part's own settings.
    sections : dict or None
        ``{extractor: {parameter: value}}``: each part's own settings (params.yaml
        ``features.<part>``); a part left out starts from its extractor's defaults.
    random_state : int
        Passed to every part that takes a ``random_state``.
    balance : bool
        Divide each part by the root-mean-square deviation of its training features
        (``part_scales_``), so that the parts weigh the same per dimension.
    n_jobs, chunk_size : int
        joblib workers and images per chunk, for all parts together (see ``features._batch``).
    """

    keeps_colour = True  # each part gets colour or grayscale as it would alone (_views)

    def __init__(self, parts=("hog", "sobel", "raw"), overrides=None, sections=None, random_state=0, balance=False,
                 n_jobs=1, chunk_size=2048):
        self.parts = parts
        self.overrides = overrides
        self.sections = sections
        self.random_state = random_state
        self.balance = balance
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        check_int(owner, "random_state", self.random_state, 0)
        check_bool(owner, "balance", self.balance)
        parts = self.parts
        if isinstance(parts, str) or not isinstance(parts, (list, tuple)) or not parts:
            raise ParameterError(f"{owner}: parts={parts!r} is invalid; expected a non-empty list of extractor names")
        allowed = [name for name in extractor_names() if name != NAME]
        for part in parts:
            if part not in allowed:
                raise ParameterError(f"{owner}: parts item {part!r} is invalid; allowed: {', '.join(allowed)}")
        if len(set(parts)) != len(parts):
            raise ParameterError(f"{owner}: parts={list(parts)!r} repeats an extractor")
        for name in ("overrides", "sections"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, dict)
                                          and all(isinstance(v, dict) or v is None for v in value.values())):
                raise ParameterError(f"{owner}: {name}={value!r} is invalid; expected {{extractor: {{parameter: value}}}}")
        extra = sorted(set(self.overrides or {}) - set(parts))
        if extra:
            raise ParameterError(f"{owner}: overrides names {extra[0]!r}, which is not in parts {list(parts)}")
        self._build_parts()  # a bad part parameter fails here, before any image is read

    def _build_parts(self) -> list[ImageFeatureExtractor]:
        built = []
        for part in self.parts:
            params = dict((self.sections or {}).get(part) or {}) | dict((self.overrides or {}).get(part) or {})
            if "random_state" in get_extractor(part).parameters():
                params.setdefault("random_state", self.random_state)
            built.append(make_extractor(part, **params))
        return built

    def _min_image_size(self) -> tuple[tuple[int, int], str]:
        sizes = [(part._min_image_size(), name) for part, name in zip(self._build_parts(), self.parts)]
        (size, needs), _ = max(sizes, key=lambda item: item[0][0][0] * item[0][0][1])
        return size, needs

    def _views(self, images: np.ndarray) -> list[np.ndarray]:
        """``images`` as each part of ``parts_`` takes them: RGB where it keeps colour, else grayscale."""
        gray = None
        views = []
        for part in self.parts_:
            if part.keeps_colour or images.ndim == 3:
                views.append(images)
            else:
                gray = to_gray(images) if gray is None else gray
                views.append(gray)
        return views

    def _fit_images(self, images: np.ndarray) -> None:
        self.parts_ = self._build_parts()
        for part, view in zip(self.parts_, self._views(images)):
            part._fit_images(view)
            part.image_shape_ = view.shape[1:]
        self.part_scales_ = self._rms_deviations(images) if self.balance else np.ones(len(self.parts_))

    def _rms_deviations(self, images: np.ndarray) -> np.ndarray:
        """Per part, sqrt of the mean over its dimensions of each dimension's variance on ``images``
        (1 for a part that is constant), accumulated chunk by chunk in float64."""
        sums: list[np.ndarray] = []
        squares: list[np.ndarray] = []
        def blocks_of(chunk: np.ndarray) -> list[np.ndarray]:
            return [part._transform_chunk(view) for part, view in zip(self.parts_, self._views(chunk))]

        for _, blocks in self._chunks(images, blocks_of):
            for i, block in enumerate(blocks):
                block = block.astype(np.float64)
                if i == len(sums):
                    sums.append(np.zeros(block.shape[1]))
                    squares.append(np.zeros(block.shape[1]))
                sums[i] += block.sum(axis=0)
                squares[i] += np.square(block).sum(axis=0)
        n = len(images)
        variances = [np.maximum(sq / n - np.square(s / n), 0.0) for s, sq in zip(sums, squares)]
        rms = np.array([np.sqrt(v.mean()) for v in variances])
        return np.where(rms > 0, rms, 1.0)

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        return np.hstack([part._transform_chunk(view) / scale for part, view, scale
                          in zip(self.parts_, self._views(images), self.part_scales_)]).astype(np.float32, copy=False)


EXTRACTOR = Extractor(
    transformer=StackedFeatures,
    citation=inspect.cleandoc("""
        C. G. M. Snoek, M. Worring, A. W. M. Smeulders, "Early versus late fusion in semantic video
        analysis", ACM Multimedia 2005, doi:10.1145/1101149.1101236 (early fusion: concatenated features)
    """).replace("\n", " "),
    summary="several extractors' features concatenated per image (default HOG + Sobel + raw pixels)",
)

"""Shared machinery of the extractors: parameter checks, image-batch validation, and the
bounded-memory, chunked, optionally parallel ``transform``.

Every extractor is a scikit-learn transformer over a batch of 8-bit images, shape
``(N, H, W)`` or ``(N, H, W, C)``; C = 1 is squeezed. An extractor whose class sets
``keeps_colour = True`` gets colour batches (C = 3, RGB order) as they are; the others get
them converted to grayscale with ``cv2.cvtColor(..., COLOR_RGB2GRAY)``, i.e. the ITU-R BT.601
luma ``Y = 0.299 R + 0.587 G + 0.114 B`` rounded back to uint8.

The batch is cut into chunks of ``chunk_size`` images; ``joblib`` maps the extractor's
per-chunk function over them (``n_jobs`` workers, results consumed in order as a
generator, so memory is bounded by a few chunks plus the output). A ``tqdm`` progress bar
appears only after one second and only on a terminal.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from numbers import Integral
from typing import Any

import cv2
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from features.errors import ImageError, ParameterError


# --------------------------------------------------------------------------- parameters
def check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as int if it is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ParameterError(f"{owner}: {name}={value!r} is invalid; expected an integer >= {minimum}")
    return int(value)


def check_bool(owner: str, name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (numpy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{owner}: {name}={value!r} is invalid; expected true or false")
    return bool(value)


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{owner}: {name}={value!r} is invalid; allowed: {allowed}")
    return value


def check_pair(owner: str, name: str, value: Any) -> tuple[int, int]:
    """Return a list/tuple of two positive integers (rows, cols) as a tuple."""
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1 for v in value)
    ):
        raise ParameterError(
            f"{owner}: {name}={value!r} is invalid; expected a list of two integers >= 1 (rows, cols)"
        )
    return int(value[0]), int(value[1])


def check_n_jobs(owner: str, value: Any) -> int | None:
    """joblib's convention: None or a non-zero integer (negative counts back from all CPUs)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value == 0:
        raise ParameterError(f"{owner}: n_jobs={value!r} is invalid; expected a non-zero integer or null")
    return int(value)


# ------------------------------------------------------------------------------- images
def check_images(X: Any, owner: str, min_size: tuple[int, int] = (1, 1), needs: str = "",
                 keep_colour: bool = False) -> np.ndarray:
    """Validate a batch of uint8 images and return it as grayscale ``(N, H, W)`` -- or, with
    ``keep_colour``, a colour batch as RGB ``(N, H, W, 3)``.

    ``min_size`` is the smallest (H, W) the extractor accepts and ``needs`` names the
    parameters that impose it, for the error message.
    """
    X = np.asarray(X)
    if X.dtype != np.uint8:
        raise ImageError(f"{owner}: images must be uint8 (0-255), got dtype {X.dtype}")
    if X.ndim not in (3, 4) or (X.ndim == 4 and X.shape[3] not in (1, 3)):
        raise ImageError(
            f"{owner}: images must have shape (N, H, W) or (N, H, W, 3), got shape {X.shape}"
        )
    if X.shape[0] == 0:
        raise ImageError(f"{owner}: got an empty batch of images (shape {X.shape})")
    n, h, w = X.shape[:3]
    if h < min_size[0] or w < min_size[1]:
        raise ImageError(
            f"{owner}: images are {h}x{w}, smaller than the {min_size[0]}x{min_size[1]} minimum for {needs}"
        )
    if X.ndim == 3:
        return np.ascontiguousarray(X)
    if X.shape[3] == 1:
        return np.ascontiguousarray(X[..., 0])
    if keep_colour:
        return np.ascontiguousarray(X)
    return to_gray(X)


def to_gray(images: np.ndarray) -> np.ndarray:
    """A validated batch as grayscale ``(N, H, W)``: an RGB ``(N, H, W, 3)`` one converted as
    :func:`check_images` converts it (BT.601 luma, rounded), a grayscale one as it is."""
    if images.ndim == 3:
        return images
    n, h, w = images.shape[:3]
    flat = np.ascontiguousarray(images).reshape(n * h, w, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).reshape(n, h, w)


# ------------------------------------------------------------------------------ chunking
def iter_chunks(
    func: Callable[[np.ndarray], Any],
    images: np.ndarray,
    n_jobs: int | None,
    chunk_size: int,
    desc: str,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(start, func(images[start:start + chunk_size]))`` for every chunk, in order."""
    n = len(images)
    starts = range(0, n, chunk_size)
    if len(starts) == 1:  # one chunk: starting workers would cost more than it saves
        results = iter([func(images)])
    else:
        # Threads, not processes: OpenCV and numpy release the GIL in the heavy calls, and
        # threads neither start interpreters nor copy the images to workers.
        results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(
            delayed(func)(images[s : s + chunk_size]) for s in starts
        )
    with tqdm(total=n, desc=desc, unit="img", delay=1, disable=None, leave=False) as bar:
        for start, result in zip(starts, results):
            bar.update(min(chunk_size, n - start))
            yield start, result


def stack_chunks(chunks: Iterator[tuple[int, np.ndarray]], n: int) -> np.ndarray:
    """Write per-chunk feature blocks into one preallocated float32 ``(n, D)`` array."""
    out = None
    for start, block in chunks:
        if out is None:
            out = np.empty((n, block.shape[1]), dtype=np.float32)
        out[start : start + len(block)] = block
    return out


# --------------------------------------------------------------------------- base class
class ImageFeatureExtractor(TransformerMixin, BaseEstimator):
    """Base class: validation, ``fit`` recording the image size, chunked ``transform``.

    Subclasses store their constructor arguments unchanged (scikit-learn convention),
    extend :meth:`_check_params`, and implement :meth:`_transform_chunk` (a uint8
    ``(n, H, W)`` chunk to float32 ``(n, D)``); they may override :meth:`_min_image_size`
    and :meth:`_fit_images`.
    """

    n_jobs: int | None
    chunk_size: int
    #: True: colour batches reach ``_fit_images``/``_transform_chunk`` as RGB ``(n, H, W, 3)``;
    #: False: as grayscale ``(n, H, W)``. Grayscale input is ``(n, H, W)`` either way.
    keeps_colour: bool = False

    def _check_params(self) -> None:
        """Raise ParameterError on an invalid parameter value (called by fit and transform)."""
        owner = type(self).__name__
        check_n_jobs(owner, self.n_jobs)
        check_int(owner, "chunk_size", self.chunk_size, 1)

    def _min_image_size(self) -> tuple[tuple[int, int], str]:
        """The smallest accepted (H, W) and the parameters that impose it."""
        return (1, 1), "the extractor"

    def _check_images(self, X: Any) -> np.ndarray:
        min_size, needs = self._min_image_size()
        return check_images(X, type(self).__name__, min_size, needs, keep_colour=self.keeps_colour)

    def _fit_images(self, images: np.ndarray) -> None:
        """Learn from the validated training images (see ``keeps_colour``); stateless by default."""

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _chunks(self, images: np.ndarray, func: Callable[[np.ndarray], Any]) -> Iterator[tuple[int, Any]]:
        return iter_chunks(func, images, self.n_jobs, self.chunk_size, type(self).__name__)

    def fit(self, X: Any, y: Any = None) -> "ImageFeatureExtractor":
        """Validate parameters and images, record ``image_shape_`` ((H, W), or (H, W, 3) for a
        colour batch given to an extractor that ``keeps_colour``), return self."""
        self._check_params()
        images = self._check_images(X)
        self._fit_images(images)
        self.image_shape_ = images.shape[1:]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features of a batch of images as a float32 ``(N, D)`` array."""
        check_is_fitted(self, "image_shape_")
        self._check_params()
        images = self._check_images(X)
        if images.shape[1:] != self.image_shape_:
            got, fitted = ("x".join(map(str, shape)) for shape in (images.shape[1:], self.image_shape_))
            raise ImageError(f"{type(self).__name__}: images are {got} but the extractor was fitted on {fitted}")
        return stack_chunks(self._chunks(images, self._transform_chunk), len(images))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

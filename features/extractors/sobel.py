"""Sobel edge features: per-cell orientation histograms plus a cell-pooled magnitude map.

For every image (scaled to [0, 1]) the horizontal and vertical derivatives come from
``cv2.Sobel`` (``CV_32F``, ``ksize``; OpenCV's default reflect-101 border), then magnitude
and direction from ``cv2.cartToPolar`` (OpenCV documents its angle as accurate to about
0.3 degrees). The image is cut into ``cell_size`` x ``cell_size`` cells (pixels beyond
the last whole cell are ignored) and each cell gives:

* an orientation histogram with ``orientations`` bins over **unsigned** directions,
  [0, 180) degrees: an edge and the same edge with light and dark swapped vote into the
  same bin, as in Dalal & Triggs (2005), who found unsigned gradients better for their
  task. Each pixel votes its gradient magnitude into one bin (no interpolation) and the
  histogram is divided by the cell's total magnitude (+1e-6), so it sums to 1 (0 for a
  cell without any gradient): it describes the *shape* of the local edge distribution,
  independent of contrast;
* when ``magnitude_map=True``, the mean gradient magnitude of the cell: the edge
  *strength* that the histogram normalisation removed (without that normalisation the
  magnitude map would just be the sum of each histogram).

Colour (an RGB batch, ``data.channels: 3``): the derivatives are taken on each channel
alone, as on a grayscale image, and every pixel keeps the magnitude and direction of the
channel where the magnitude is largest (first on a tie), the rule of Dalal & Triggs (2005,
section 6.1) that HOG uses too. Grayscale batches give the same features as before.

Output: the histograms (cell row, cell col, bin), then the magnitude map (cell row, cell
col), as float32. Unlike HOG (``features.extractors.hog``) there are no overlapping blocks.

Reference: I. Sobel and G. Feldman, "A 3x3 isotropic gradient operator for image
processing" (1968); N. Dalal and B. Triggs, CVPR 2005, doi:10.1109/CVPR.2005.177.
"""
from __future__ import annotations

import math
from numbers import Integral

import cv2
import numpy as np

from features import Extractor
from features._batch import ImageFeatureExtractor, check_bool, check_int
from features.errors import ParameterError

KSIZES = (1, 3, 5, 7)
_EPS = 1e-6


def central_gradient(image: np.ndarray, row: int, col: int) -> tuple[float, float, float, float]:
    """Gradient of one interior pixel by central differences, as in the lecture's HOG example.

    Returns ``(gx, gy, magnitude, angle_degrees)`` with ``gx = right - left`` and
    ``gy = up - down`` (the pixel above minus the pixel below, so that a positive angle
    points up as on paper), ``magnitude = sqrt(gx^2 + gy^2)`` and
    ``angle = atan2(gy, gx)`` in degrees, in (-180, 180]. The lecture's example (centre
    85 of a 5x5 patch) prints Gy = 68 - 56 = 8, magnitude 13.6, angle 36 degrees; 68 - 56
    is 12, which gives 16.28 and 47.49 degrees (see tests/test_sobel.py).
    """
    img = np.asarray(image)
    h, w = img.shape
    if not (1 <= row <= h - 2 and 1 <= col <= w - 2):
        raise ParameterError(
            f"row={row!r}, col={col!r} is not an interior pixel of the {h}x{w} image "
            f"(need 1 <= row <= {h - 2} and 1 <= col <= {w - 2})"
        )
    gx = float(img[row, col + 1]) - float(img[row, col - 1])
    gy = float(img[row - 1, col]) - float(img[row + 1, col])
    return gx, gy, math.hypot(gx, gy), math.degrees(math.atan2(gy, gx))


def sobel_polar(images: np.ndarray, ksize: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude and direction (degrees, [0, 360)) of a float32 (n, H, W) batch.

    One ``cv2.Sobel`` pair and one ``cv2.cartToPolar`` per image: OpenCV's SIMD and scalar
    code paths round differently, so a call over a stack of images could give an image
    slightly different values depending on its neighbours in the chunk (and so on
    ``chunk_size``); per-image calls make every feature a function of its image only.
    """
    magnitude, angle = np.empty_like(images), np.empty_like(images)
    for i, image in enumerate(images):
        gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=ksize)
        gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=ksize)
        magnitude[i], angle[i] = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    return magnitude, angle


def strongest_channel(images: np.ndarray, ksize: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude, direction and channel index of every pixel of a float32 RGB (n, H, W, 3) batch:
    :func:`sobel_polar` of each channel alone, kept where its magnitude is largest (first on a tie)."""
    n, height, width = images.shape[:3]
    by_channel = np.moveaxis(images, 3, 0).reshape(3 * n, height, width)  # channel 0 of every image, then 1, 2
    magnitude, angle = (a.reshape(3, n, height, width) for a in sobel_polar(by_channel, ksize))
    channel = magnitude.argmax(axis=0)
    pick = channel[None]
    return (np.take_along_axis(magnitude, pick, axis=0)[0], np.take_along_axis(angle, pick, axis=0)[0], channel)


class SobelFeatures(ImageFeatureExtractor):
    """Cell histograms of unsigned Sobel gradient orientation (+ magnitude map).

    See the module docstring for the exact definition.

    Parameters
    ----------
    ksize : {1, 3, 5, 7}
        Sobel aperture (1 means the [-1, 0, 1] central difference).
    cell_size : int >= 1
        Side of the square cells in pixels; images need H, W >= cell_size.
    orientations : int >= 1
        Number of orientation bins over [0, 180) degrees.
    magnitude_map : bool
        Append the mean gradient magnitude of every cell.
    n_jobs, chunk_size : int
        joblib workers and images per chunk (see ``features._batch``).
    """

    keeps_colour = True  # RGB batches: the strongest channel's gradient per pixel (module docstring)

    def __init__(self, ksize=3, cell_size=4, orientations=8, magnitude_map=True, n_jobs=1, chunk_size=2048):
        self.ksize = ksize
        self.cell_size = cell_size
        self.orientations = orientations
        self.magnitude_map = magnitude_map
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        if isinstance(self.ksize, bool) or not isinstance(self.ksize, Integral) or self.ksize not in KSIZES:
            raise ParameterError(f"{owner}: ksize={self.ksize!r} is invalid; allowed: 1, 3, 5, 7")
        check_int(owner, "cell_size", self.cell_size, 1)
        check_int(owner, "orientations", self.orientations, 1)
        check_bool(owner, "magnitude_map", self.magnitude_map)

    def _min_image_size(self) -> tuple[tuple[int, int], str]:
        return (self.cell_size, self.cell_size), f"cell_size={self.cell_size}"

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        n, height, width = images.shape[:3]
        c, nb = int(self.cell_size), int(self.orientations)
        ncr, ncc = height // c, width // c
        scaled = images.astype(np.float32) / np.float32(255)
        if images.ndim == 4:
            magnitude, angle, _ = strongest_channel(scaled, int(self.ksize))
        else:
            magnitude, angle = sobel_polar(scaled, int(self.ksize))
        magnitude, angle = magnitude[:, : ncr * c, : ncc * c], angle[:, : ncr * c, : ncc * c]
        # angle in [0, 360): floor(angle * nb / 180) is in [0, 2 nb); mod nb folds it to unsigned.
        bins = (angle * np.float32(nb / 180)).astype(np.int32) % np.int32(nb)
        cell_of_pixel = (np.arange(ncr * c)[:, None] // c) * ncc + np.arange(ncc * c) // c
        index = (np.arange(n)[:, None, None] * (ncr * ncc) + cell_of_pixel) * nb + bins
        hist = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=n * ncr * ncc * nb)
        hist = hist.reshape(n, ncr * ncc, nb)
        total = hist.sum(axis=2, keepdims=True)
        parts = [(hist / (total + _EPS)).reshape(n, -1)]
        if self.magnitude_map:
            parts.append(total.reshape(n, -1) / (c * c))
        return np.concatenate(parts, axis=1).astype(np.float32)


def draw(extractor: SobelFeatures, image: np.ndarray, features: np.ndarray | None = None) -> dict:
    """``sobel``: the image's Gx, Gy and gradient magnitude with the extractor's ``ksize``, of the
    strongest channel per pixel for a colour image (the registry's drawing hook, ``features.Extractor.draw``)."""
    from features.extractors._sobel_drawing import sobel_figure

    return {"sobel": sobel_figure(image, int(extractor.ksize))}


EXTRACTOR = Extractor(
    transformer=SobelFeatures,
    citation=(
        'I. Sobel and G. Feldman, "A 3x3 isotropic gradient operator for image processing", 1968; '
        "N. Dalal and B. Triggs, CVPR 2005, doi:10.1109/CVPR.2005.177 (unsigned orientation histograms)"
    ),
    summary="per-cell histograms of unsigned Sobel gradient orientation, plus a cell-mean magnitude map",
    draw=draw,
)

"""Colour histograms (Swain & Ballard 1991): a joint HSV histogram per cell of a spatial grid.

Every image is converted to HSV with OpenCV (``cv2.cvtColor(..., COLOR_RGB2HSV)`` on 8-bit
images: hue H in [0, 180), saturation S and value V in [0, 255]) and cut into a ``grid`` x
``grid`` grid of cells (cell edges at ``floor(i * H / grid)``, so every pixel is in one
cell). Each cell gives the joint histogram of its pixels over ``bins = [h, s, v]`` uniform
bins of the three ranges, binned exactly as ``cv2.calcHist([cell], [0, 1, 2], None, bins,
[0, 180, 0, 256, 0, 256])`` bins them, divided by the cell's pixel count (L1-normalised, so
it sums to 1). Output: (cell row, cell col, hue bin, saturation bin, value bin), float32,
``grid**2 * h * s * v`` values (512 with the defaults).

The histogram says which colours are present and roughly where, nothing about shape:
it complements the gradient features (HOG, Sobel, SIFT), which see no colour at all.
Hue is the colour's angle on the colour wheel, independent of brightness; saturation
separates vivid colours from greys; a coarse value axis keeps light and dark apart.

Grayscale images are taken as colour images with R = G = B: their hue and saturation are 0,
so only the value bins of the first hue and saturation bin are filled and the feature is an
intensity histogram of ``bins[2]`` levels per cell (same length as on colour data).

References
----------
M. J. Swain and D. H. Ballard, "Color indexing", IJCV 7(1), 11-32, 1991, doi:10.1007/BF00130487.
"""
from __future__ import annotations

from numbers import Integral

import cv2
import numpy as np

from features import Extractor
from features._batch import ImageFeatureExtractor, check_int
from features.errors import ParameterError

# The upper ends of OpenCV's 8-bit HSV ranges (calcHist's exclusive upper bounds).
RANGES = (180, 256, 256)
CHANNELS = ("hue", "saturation", "value")


def bin_tables(bins: tuple[int, int, int]) -> list[np.ndarray]:
    """For each HSV channel, the bin of every 8-bit value: ``floor(value * bins / range)`` in
    float64, the lookup table ``cv2.calcHist`` builds for uniform ranges starting at 0."""
    return [np.floor(np.arange(256) * (n / float(top))).astype(np.intp) for n, top in zip(bins, RANGES)]


def to_hsv(images: np.ndarray) -> np.ndarray:
    """OpenCV's 8-bit HSV of an RGB (n, H, W, 3) batch, or of a grayscale (n, H, W) one taken as
    R = G = B."""
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=3)
    n, height, width = images.shape[:3]
    flat = np.ascontiguousarray(images).reshape(n * height, width, 3)  # per-pixel: batch-independent
    return cv2.cvtColor(flat, cv2.COLOR_RGB2HSV).reshape(n, height, width, 3)


def cell_edges(size: int, grid: int) -> np.ndarray:
    """The ``grid + 1`` cell edges along an axis of ``size`` pixels."""
    return (np.arange(grid + 1) * size) // grid


def colour_histograms(images: np.ndarray, bins: tuple[int, int, int], grid: int) -> np.ndarray:
    """L1-normalised joint HSV histogram of every cell: float64 (n, grid, grid, *bins)."""
    hsv = to_hsv(images)
    n, height, width = hsv.shape[:3]
    h_bin, s_bin, v_bin = (table[hsv[..., i]] for i, table in enumerate(bin_tables(bins)))
    joint = (h_bin * bins[1] + s_bin) * bins[2] + v_bin
    n_bins = bins[0] * bins[1] * bins[2]
    row_cell = np.searchsorted(cell_edges(height, grid), np.arange(height), side="right") - 1
    col_cell = np.searchsorted(cell_edges(width, grid), np.arange(width), side="right") - 1
    cell = row_cell[:, None] * grid + col_cell
    index = ((np.arange(n)[:, None, None] * grid * grid + cell) * n_bins + joint).ravel()
    hist = np.bincount(index, minlength=n * grid * grid * n_bins).reshape(n, grid * grid, n_bins)
    pixels = np.bincount(cell.ravel(), minlength=grid * grid)
    return (hist / pixels[None, :, None]).reshape(n, grid, grid, *bins)


def check_bins(owner: str, value) -> tuple[int, int, int]:
    """``bins`` as a tuple: three integers, each >= 1 and at most its channel's 8-bit range."""
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or any(isinstance(v, bool) or not isinstance(v, Integral) or not 1 <= v <= top
                   for v, top in zip(value, RANGES))):
        raise ParameterError(f"{owner}: bins={value!r} is invalid; expected three integers [hue, saturation, "
                             f"value], 1-180, 1-256 and 1-256")
    return int(value[0]), int(value[1]), int(value[2])


class ColourHistogram(ImageFeatureExtractor):
    """Joint HSV colour histogram of every cell of a ``grid`` x ``grid`` grid, L1-normalised
    per cell (Swain & Ballard 1991); see the module docstring for the exact definition.

    Parameters
    ----------
    bins : list of three ints
        Uniform bins of hue (1-180), saturation (1-256) and value (1-256).
    grid : int >= 1
        Cells per side; images need H, W >= grid.
    n_jobs, chunk_size : int
        joblib workers and images per chunk (see ``features._batch``).
    """

    keeps_colour = True

    def __init__(self, bins=(8, 4, 4), grid=2, n_jobs=1, chunk_size=2048):
        self.bins = bins
        self.grid = grid
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        check_bins(owner, self.bins)
        check_int(owner, "grid", self.grid, 1)

    def _min_image_size(self) -> tuple[tuple[int, int], str]:
        return (self.grid, self.grid), f"grid={self.grid}"

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        hist = colour_histograms(images, check_bins(type(self).__name__, self.bins), int(self.grid))
        return hist.reshape(len(images), -1).astype(np.float32)


def draw(extractor: ColourHistogram, image: np.ndarray, features: np.ndarray | None = None) -> dict:
    """``colorhist``: the image with the extractor's grid beside every cell's hue histogram
    (the registry's drawing hook, ``features.Extractor.draw``)."""
    from features.extractors._colorhist_drawing import colorhist_figure

    return {"colorhist": colorhist_figure(image, tuple(extractor.bins), int(extractor.grid))}


EXTRACTOR = Extractor(
    transformer=ColourHistogram,
    citation='M. J. Swain and D. H. Ballard, "Color indexing", IJCV 7(1), 11-32, 1991, doi:10.1007/BF00130487',
    summary="joint HSV colour histogram (hue x saturation x value bins) per cell of a spatial grid, "
            "L1-normalised per cell; an intensity histogram on grayscale data",
    draw=draw,
)

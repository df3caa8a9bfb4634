"""Histogram of Oriented Gradients (Dalal & Triggs 2005), batched, equal to scikit-image.

``batch_hog`` computes, for a whole ``(n, H, W)`` uint8 batch at once, exactly what
``skimage.feature.hog(image, ..., feature_vector=True)`` computes for one grayscale image
(max abs difference ~1e-7, the float32 rounding of the output). scikit-image's conventions,
read from ``skimage/feature/_hog.py`` and ``_hoghistogram.pyx`` (0.24-0.26), are kept:

1. optional power-law compression: ``image = sqrt(image)`` (``transform_sqrt``);
2. gradients by central differences ``[-1, 0, 1]`` along rows and columns, set to zero on
   the first and last row (for ``g_row``) / column (for ``g_col``);
3. magnitude ``hypot(g_col, g_row)`` and unsigned orientation
   ``rad2deg(arctan2(g_row, g_col)) % 180`` in [0, 180);
4. hard binning, no interpolation between orientation bins or between cells (Dalal &
   Triggs interpolate trilinearly; scikit-image does not): bin ``i`` takes the orientations
   in ``[180/n * i, 180/n * (i + 1))``; each cell histogram is the sum of the magnitudes
   in each bin divided by the number of pixels in the cell (a mean); pixels beyond the
   last whole cell are ignored;
5. blocks of ``cells_per_block`` cells, sliding by one cell, each normalised with
   ``eps = 1e-5``: L1 ``v / (|v|_1 + eps)``, L1-sqrt ``sqrt(v / (|v|_1 + eps))``,
   L2 ``v / sqrt(|v|_2^2 + eps^2)``, L2-Hys (L2, clip at 0.2, L2 again);
6. the output ordered as (block row, block col, cell row, cell col, orientation).

Colour (an RGB batch, ``data.channels: 3``): steps 2-3 per channel, and every pixel keeps
the gradient of the channel with the largest magnitude (Dalal & Triggs 2005, section 6.1),
exactly as ``skimage.feature.hog(image, ..., channel_axis=-1)`` (ties: the first channel).
Grayscale batches give the same features as before, bit for bit.

Speed: with ``transform_sqrt=False`` the gradients of a uint8 image are integers in
[-255, 255], so the bin and magnitude of every pixel are looked up in a 511 x 511 table
computed once with the formulas of step 3 (exact by construction); with
``transform_sqrt=True`` they are computed per pixel in float64. Either way one chunk is
a handful of numpy passes and one ``np.bincount``.

References
----------
N. Dalal and B. Triggs, "Histograms of Oriented Gradients for Human Detection",
CVPR 2005, doi:10.1109/CVPR.2005.177.
S. van der Walt et al., "scikit-image: image processing in Python", PeerJ 2:e453, 2014.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from features import Extractor
from features._batch import ImageFeatureExtractor, check_bool, check_choice, check_int, check_pair

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
_EPS = 1e-5  # scikit-image's _hog_normalize_block default
_MAX_GRADIENT = 255  # |central difference| of uint8 pixels


def _gradients(images: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of an (n, H, W) batch, zero on the image border, cropped to (h, w)."""
    n, height, width = images.shape
    g_row = np.zeros((n, h, w), dtype=images.dtype)
    g_col = np.zeros((n, h, w), dtype=images.dtype)
    r1, c1 = min(h, height - 1), min(w, width - 1)  # rows/cols 1..r1-1 have two neighbours
    np.subtract(images[:, 2 : r1 + 1, :w], images[:, : r1 - 1, :w], out=g_row[:, 1:r1])
    np.subtract(images[:, :h, 2 : c1 + 1], images[:, :h, : c1 - 1], out=g_col[:, :, 1:c1])
    return g_row, g_col


def _orientation_bins(g_row: np.ndarray, g_col: np.ndarray, orientations: int) -> np.ndarray:
    """Bin index of every pixel, as scikit-image assigns it; ``orientations`` means no bin.

    scikit-image takes ``rad2deg(arctan2(g_row, g_col)) % 180`` and puts a pixel in bin
    ``i`` when ``edge[i] <= angle < edge[i + 1]`` with ``edge[i] = 180/orientations * i``.
    ``np.mod`` is slow, so the ``% 180`` is written out: for ``deg`` in [-180, 180] numpy's
    result is ``deg + 180`` (rounded) below zero and ``deg - 180`` (exact) from 180 on.
    """
    deg = np.rad2deg(np.arctan2(g_row, g_col))
    angle = np.where(deg < 0, deg + 180, np.where(deg >= 180, deg - 180, deg))
    edges = (180.0 / orientations) * np.arange(orientations + 1)
    return np.searchsorted(edges, angle, side="right") - 1


@lru_cache(maxsize=8)
def _integer_tables(orientations: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin and magnitude of every integer gradient pair, flat index (g_row+255)*511 + g_col+255."""
    g = np.arange(-_MAX_GRADIENT, _MAX_GRADIENT + 1, dtype=np.float64)
    g_row, g_col = np.meshgrid(g, g, indexing="ij")
    bins = _orientation_bins(g_row, g_col, orientations).astype(np.min_scalar_type(orientations))
    return bins.ravel(), np.hypot(g_col, g_row).ravel()


def _dominant_channel(magnitude: np.ndarray, *values: np.ndarray) -> list[np.ndarray]:
    """Each of ``values`` (channel-first, (3, n, h, w)) at the channel of largest ``magnitude``,
    per pixel; the first such channel on a tie, like scikit-image's ``argmax``."""
    channel = magnitude.argmax(axis=0)[None]
    return [np.take_along_axis(v, channel, axis=0)[0] for v in values]


def _channels_first(images: np.ndarray) -> np.ndarray:
    """A colour (n, H, W, 3) batch as (3n, H, W): channel 0 of every image, then 1, then 2."""
    return np.moveaxis(images, 3, 0).reshape(-1, *images.shape[1:3])


def cell_histograms(
    images: np.ndarray, orientations: int, cell: tuple[int, int], transform_sqrt: bool
) -> np.ndarray:
    """Orientation histogram of every cell: float64 (n, cells_row, cells_col, orientations).

    ``images`` is a grayscale (n, H, W) or an RGB (n, H, W, 3) batch. For colour, every
    pixel takes the gradient of the channel where its magnitude is largest (Dalal & Triggs
    2005, section 6.1), as ``skimage.feature.hog(..., channel_axis=-1)`` does.
    """
    n, height, width = images.shape[:3]
    colour = images.ndim == 4
    batch = _channels_first(images) if colour else images
    cr, cc = cell
    ncr, ncc = height // cr, width // cc
    h, w = ncr * cr, ncc * cc
    if transform_sqrt:
        g_row, g_col = _gradients(np.sqrt(batch, dtype=np.float64), h, w)
        if colour:
            g_row, g_col = (g.reshape(3, n, h, w) for g in (g_row, g_col))
            g_row, g_col = _dominant_channel(np.hypot(g_row, g_col), g_row, g_col)
        bins = _orientation_bins(g_row, g_col, orientations)
        magnitude = np.hypot(g_col, g_row)
    else:
        g_row, g_col = _gradients(batch.astype(np.int16), h, w)
        side = 2 * _MAX_GRADIENT + 1
        key = g_row.astype(np.int32)
        key *= side
        key += g_col
        key += _MAX_GRADIENT * side + _MAX_GRADIENT
        table_bins, table_magnitude = _integer_tables(orientations)
        if colour:  # the table's hypot(g_col, g_row) equals scikit-image's hypot(g_row, g_col) bit for bit
            key = key.reshape(3, n, h, w)
            (key,) = _dominant_channel(table_magnitude[key], key)
        bins, magnitude = table_bins[key], table_magnitude[key]
    # One bincount over (image, cell, bin); bin == orientations collects "no bin".
    cell_of_pixel = (np.arange(h)[:, None] // cr) * ncc + np.arange(w) // cc
    index = (np.arange(n)[:, None, None] * (ncr * ncc) + cell_of_pixel) * (orientations + 1)
    index += bins
    hist = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=n * ncr * ncc * (orientations + 1))
    return hist.reshape(n, ncr, ncc, orientations + 1)[..., :orientations] / (cr * cc)


def _normalise_blocks(blocks: np.ndarray, method: str) -> np.ndarray:
    """Normalise each block vector (last axis); histograms are non-negative, so |v|_1 = sum v."""
    if method in ("L1", "L1-sqrt"):
        out = blocks / (blocks.sum(axis=-1, keepdims=True) + _EPS)
        return np.sqrt(out) if method == "L1-sqrt" else out
    out = blocks / np.sqrt(np.einsum("...i,...i->...", blocks, blocks)[..., None] + _EPS**2)
    if method == "L2-Hys":
        np.minimum(out, 0.2, out=out)
        out /= np.sqrt(np.einsum("...i,...i->...", out, out)[..., None] + _EPS**2)
    return out


def batch_hog(
    images: np.ndarray,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (4, 4),
    cells_per_block: tuple[int, int] = (2, 2),
    block_norm: str = "L2-Hys",
    transform_sqrt: bool = False,
) -> np.ndarray:
    """HOG of every image of a uint8 (n, H, W) or RGB (n, H, W, 3) batch: float32 (n, D), D as
    in scikit-image (the same D for both).

    Arguments are assumed valid (``HOGFeatures`` checks them); the images must hold at
    least one block: H >= pixels_per_cell[0] * cells_per_block[0], likewise for W.
    """
    hist = cell_histograms(images, orientations, pixels_per_cell, transform_sqrt)
    br, bc = cells_per_block
    # (n, blocks_row, blocks_col, orient, br, bc) -> (n, blocks_row, blocks_col, br*bc*orient)
    windows = sliding_window_view(hist, (br, bc), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    blocks = np.ascontiguousarray(windows).reshape(*windows.shape[:3], -1)
    return _normalise_blocks(blocks, block_norm).reshape(len(images), -1).astype(np.float32)


class HOGFeatures(ImageFeatureExtractor):
    """HOG descriptor (Dalal & Triggs 2005) as a scikit-learn transformer.

    Same parameters and output as ``skimage.feature.hog(image, orientations,
    pixels_per_cell, cells_per_block, block_norm, transform_sqrt=transform_sqrt,
    feature_vector=True)`` on grayscale images, and with ``channel_axis=-1`` on RGB images
    (the gradient of the strongest channel per pixel; see the module docstring for the exact
    conventions), computed for a whole chunk at once by :func:`batch_hog`.

    Parameters
    ----------
    orientations : int >= 1
        Number of unsigned orientation bins over [0, 180) degrees.
    pixels_per_cell, cells_per_block : list or tuple of two ints >= 1
        (rows, cols) of a cell in pixels and of a block in cells.
    block_norm : {"L1", "L1-sqrt", "L2", "L2-Hys"}
    transform_sqrt : bool
        Square-root (gamma) compression of the image before the gradients.
    n_jobs, chunk_size : int
        joblib workers and images per chunk (see ``features._batch``).
    """

    keeps_colour = True  # RGB batches: the strongest channel's gradient per pixel (Dalal & Triggs 6.1)

    def __init__(
        self,
        orientations=9,
        pixels_per_cell=(4, 4),
        cells_per_block=(2, 2),
        block_norm="L2-Hys",
        transform_sqrt=False,
        n_jobs=1,
        chunk_size=2048,
    ):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.transform_sqrt = transform_sqrt
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        check_int(owner, "orientations", self.orientations, 1)
        check_pair(owner, "pixels_per_cell", self.pixels_per_cell)
        check_pair(owner, "cells_per_block", self.cells_per_block)
        check_choice(owner, "block_norm", self.block_norm, BLOCK_NORMS)
        check_bool(owner, "transform_sqrt", self.transform_sqrt)

    def _min_image_size(self) -> tuple[tuple[int, int], str]:
        (cr, cc), (br, bc) = tuple(self.pixels_per_cell), tuple(self.cells_per_block)
        needs = f"pixels_per_cell={list(self.pixels_per_cell)} and cells_per_block={list(self.cells_per_block)}"
        return (cr * br, cc * bc), needs

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        return batch_hog(
            images,
            orientations=int(self.orientations),
            pixels_per_cell=tuple(self.pixels_per_cell),
            cells_per_block=tuple(self.cells_per_block),
            block_norm=self.block_norm,
            transform_sqrt=bool(self.transform_sqrt),
        )


def draw(extractor: HOGFeatures, image: np.ndarray, features: np.ndarray | None = None) -> dict:
    """``hog``: every cell's orientation histogram as glyphs over the image, with the
    extractor's cells, blocks and settings (the registry's drawing hook, ``features.Extractor.draw``)."""
    from features.extractors._hog_drawing import hog_figure

    return {"hog": hog_figure(image, int(extractor.orientations), tuple(extractor.pixels_per_cell),
                              tuple(extractor.cells_per_block), extractor.block_norm, bool(extractor.transform_sqrt))}


EXTRACTOR = Extractor(
    transformer=HOGFeatures,
    citation=(
        'N. Dalal and B. Triggs, "Histograms of Oriented Gradients for Human Detection", CVPR 2005, '
        "doi:10.1109/CVPR.2005.177"
    ),
    summary="Histogram of Oriented Gradients, equal to skimage.feature.hog, computed a batch at a time",
    draw=draw,
)

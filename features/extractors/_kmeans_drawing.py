"""The kmeans extractor drawn (its ``draw`` hook): the windows and pooling quadrants on the
image, the learned centroids as image patches, and the activation maps of the centroids that
respond most to one image."""
from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from features.drawing import DPI, as_rgb, show_image
from features.extractors.kmeans import KMeansFeatures

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")


def quadrant_split(rows: int, cols: int) -> tuple[int, int]:
    """First window row and column of the bottom and right quadrants (``pool_quadrants``)."""
    return (rows + 1) // 2, (cols + 1) // 2


def layout_figure(extractor: KMeansFeatures, image: Any) -> Figure:
    """The first window (receptive field) on the image and the four pooling quadrants: which
    pixels the windows of each quadrant cover. Needs no fitting."""
    picture = as_rgb(image)
    size, stride = int(extractor.patch_size), int(extractor.stride)
    rows = (picture.shape[0] - size) // stride + 1
    cols = (picture.shape[1] - size) // stride + 1
    r, c = quadrant_split(max(rows, 1), max(cols, 1))
    fig = Figure(figsize=(5, 5.4), dpi=DPI)
    ax = fig.subplots()
    show_image(ax, picture, f"{rows}x{cols} windows of {size}x{size} px, stride {stride}; "
                            f"quadrants split at window row {r}, column {c}")
    ax.add_patch(Rectangle((-0.5, -0.5), size, size, fill=False, edgecolor="#ffd200", lw=2.5))
    # window i covers pixels [i*stride, i*stride + size): the bottom/right quadrants' windows start at r*stride
    ax.axhline(r * stride - 0.5, color="#ff5050", lw=1.5)
    ax.axvline(c * stride - 0.5, color="#ff5050", lw=1.5)
    fig.suptitle("k-means features: receptive field (yellow) and where the quadrant windows start (red)",
                 fontsize=9)
    return fig


def centroid_patches(extractor: KMeansFeatures) -> np.ndarray:
    """The centroids un-whitened back to normalised-patch space (``c P^-1 + mean``) and each
    stretched to [0, 1] for display: ``(k, size, size)`` or ``(k, size, size, 3)``."""
    patches = np.linalg.solve(extractor.zca_, extractor.centroids_.T.astype(np.float64)).T + extractor.mean_
    low, high = patches.min(axis=1, keepdims=True), patches.max(axis=1, keepdims=True)
    patches = (patches - low) / np.where(high > low, high - low, 1.0)
    size = int(extractor.patch_size)
    colour = patches.shape[1] == 3 * size * size
    return patches.reshape(len(patches), size, size, *((3,) if colour else ()))


def _show_patch(ax, patch: np.ndarray, title: str) -> None:
    show_image(ax, patch, title, cmap=None if patch.ndim == 3 else "gray", vmin=0, vmax=1)


def centroid_figure(extractor: KMeansFeatures, limit: int = 100) -> Figure:
    """The first ``limit`` learned centroids as image patches (un-whitened for display)."""
    patches = centroid_patches(extractor)[:limit]
    side = int(np.ceil(np.sqrt(len(patches))))
    fig = Figure(figsize=(0.6 * side + 0.4, 0.6 * side + 0.8), dpi=DPI)
    axes = np.atleast_1d(fig.subplots(side, side)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, patch in zip(axes, patches):
        _show_patch(ax, patch, "")
        ax.axis("on")
    total = len(extractor.centroids_)
    fig.suptitle(f"k-means features: {len(patches)} of {total} learned filters\n"
                 "(centroids un-whitened for display, each stretched to full contrast)", fontsize=9)
    return fig


def activation_figure(extractor: KMeansFeatures, image: Any, n_shown: int = 5) -> Figure:
    """The image, and for the ``n_shown`` centroids with the largest pooled activation on it:
    the centroid and its triangle-activation map over the windows, split into the quadrants
    whose sums are the image's features."""
    maps = extractor.activation_maps(np.asarray(image)[None])[0]
    rows, cols, k = maps.shape
    r, c = quadrant_split(rows, cols)
    top = np.argsort(-maps.sum(axis=(0, 1)), kind="stable")[:n_shown]
    patches = centroid_patches(extractor)
    fig = Figure(figsize=(2.2 * (len(top) + 1), 4.6), dpi=DPI)
    axes = fig.subplots(2, len(top) + 1)
    show_image(axes[0, 0], as_rgb(image), "image")
    zeros = float((maps == 0).mean())
    axes[1, 0].axis("off")
    axes[1, 0].text(0.0, 0.5, f"{rows}x{cols} windows\n{k} centroids\n{zeros:.0%} of the\nactivations are 0",
                    fontsize=8, va="center")
    vmax = float(maps[..., top].max()) or 1.0
    for column, index in enumerate(top, start=1):
        _show_patch(axes[0, column], patches[index], f"centroid {index}")
        activation = maps[..., index]
        sums = [activation[:r, :c].sum(), activation[:r, c:].sum(), activation[r:, :c].sum(), activation[r:, c:].sum()]
        show_image(axes[1, column], activation, "sums " + " ".join(f"{s:.0f}" for s in sums),
                   cmap="viridis", vmin=0, vmax=vmax)
        axes[1, column].axhline(r - 0.5, color="white", lw=1)
        axes[1, column].axvline(c - 0.5, color="white", lw=1)
    fig.suptitle("k-means features: the centroids most active on this image and their activation maps;\n"
                 "the four quadrant sums (" + ", ".join(QUADRANTS) + ") are features of this image", fontsize=9)
    fig.tight_layout()
    return fig

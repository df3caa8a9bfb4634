"""The colorhist extractor drawn (its ``draw`` hook): the image cut into the extractor's grid
beside every cell's hue histogram, from the extractor's own joint HSV histograms."""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
from matplotlib.figure import Figure

from features.drawing import DPI, as_rgb, show_image
from features.errors import ImageError
from features.extractors.colorhist import cell_edges, colour_histograms


def hue_colours(n_bins: int) -> np.ndarray:
    """The RGB colour (floats in [0, 1]) of each hue bin's centre, at full saturation and value."""
    centres = ((np.arange(n_bins) + 0.5) * 180 / n_bins).astype(np.uint8)
    hsv = np.stack([centres, np.full(n_bins, 255, np.uint8), np.full(n_bins, 255, np.uint8)], axis=1)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0] / 255.0


def colorhist_figure(image: Any, bins: Sequence[int] = (8, 4, 4), grid: int = 2) -> Figure:
    """The image with the cell grid, and per cell the hue histogram of its coloured pixels (the
    joint histogram summed over value and every saturation bin but the first; bars in the hue's
    colour), titled with its share of grey pixels (the first saturation bin: black, white and
    greys, whose hue means nothing, all counted at hue 0). A gray image has no coloured pixel:
    its cells' intensity (value) histograms are shown instead."""
    rgb = as_rgb(image)
    if rgb.shape[0] < grid or rgb.shape[1] < grid:
        raise ImageError(f"drawing: a {rgb.shape[0]}x{rgb.shape[1]} image holds no {grid}x{grid} grid")
    bins = tuple(int(b) for b in bins)
    hist = colour_histograms(rgb[None], bins, grid)[0]  # (grid, grid, h, s, v)
    fig = Figure(figsize=(10, 4.8), dpi=DPI)
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.3])
    right.subplots_adjust(top=0.82)
    ax = left.subplots()
    show_image(ax, rgb, f"image, {grid}x{grid} cells")
    for edge in cell_edges(rgb.shape[0], grid)[1:-1]:
        ax.axhline(edge - 0.5, color="white", lw=1.5)
    for edge in cell_edges(rgb.shape[1], grid)[1:-1]:
        ax.axvline(edge - 0.5, color="white", lw=1.5)
    axes = np.atleast_2d(right.subplots(grid, grid, sharex=True, sharey=True, squeeze=False))
    colours = hue_colours(bins[0])
    first = 1 if bins[1] > 1 else 0  # with one saturation bin, greys cannot be told apart
    hues = hist[:, :, :, first:].sum(axis=(3, 4))
    gray = not hues.any()  # a grayscale image: its histogram is one of intensity (value)
    shown = hist[:, :, 0, 0, :] if gray else hues
    n_shown = bins[2] if gray else bins[0]
    if gray:
        colours = np.repeat(((np.arange(n_shown) + 0.5) / n_shown)[:, None], 3, axis=1)
    top = float(shown.max()) or 1.0
    for r in range(grid):
        for c in range(grid):
            cell = axes[r, c]
            cell.bar(np.arange(n_shown), shown[r, c], width=0.9, color=colours, edgecolor="#444444", lw=0.4)
            cell.set_ylim(0, top * 1.05)
            cell.set_xticks([])
            cell.tick_params(labelsize=6)
            grey = f": {hist[r, c][:, 0].sum():.0%} grey" if first and not gray else ""
            cell.set_title(f"cell ({r}, {c}){grey}", fontsize=7)
    shows = (f"a gray image: each cell's intensity (value) histogram, {bins[2]} bins" if gray
             else f"each cell's hue histogram of its coloured pixels, {bins[0]} bins over 0-360°")
    fig.suptitle(f"Colour histogram: joint HSV {bins[0]}x{bins[1]}x{bins[2]} bins per cell, L1-normalised "
                 f"(features.colorhist)\nright: {shows}", fontsize=10)
    return fig

"""The hog extractor drawn (its ``draw`` hook): every cell's orientation histogram as glyphs
over the image, from the extractor's own cell histograms (before block normalisation; of the
strongest channel per pixel for a colour image)."""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
from matplotlib.figure import Figure

from features.drawing import DPI, GLYPH_SCALE, as_gray, as_rgb, show_image, upscale
from features.errors import ImageError
from features.extractors.hog import cell_histograms


def hog_cells(image: Any, orientations: int = 9, pixels_per_cell: Sequence[int] = (4, 4),
              transform_sqrt: bool = False) -> np.ndarray:
    """The orientation histogram of every cell, float64 ``(cells_row, cells_col, orientations)``:
    the hog extractor's own cell histograms (scikit-image's conventions), before block
    normalisation; of the strongest channel's gradients for an RGB image, as the extractor."""
    array = np.asarray(image)
    pixels = as_rgb(array) if array.ndim == 3 and array.shape[2] == 3 else as_gray(array)
    cell = (int(pixels_per_cell[0]), int(pixels_per_cell[1]))
    if pixels.shape[0] < cell[0] or pixels.shape[1] < cell[1]:
        raise ImageError(f"drawing: a {pixels.shape[0]}x{pixels.shape[1]} image holds no {cell[0]}x{cell[1]} HOG cell")
    return cell_histograms(pixels[None], int(orientations), cell, bool(transform_sqrt))[0]


def hog_glyphs(image: Any, orientations: int = 9, pixels_per_cell: Sequence[int] = (4, 4),
               cells_per_block: Sequence[int] = (2, 2), transform_sqrt: bool = False,
               scale: int = GLYPH_SCALE) -> np.ndarray:
    """Every cell's histogram drawn as oriented glyphs over the (darkened, enlarged) image.

    As in scikit-image's ``hog(visualize=True)``, each bin is a line through the cell centre
    perpendicular to the bin's gradient direction (along the edge), its brightness the bin's
    share of the largest bin in the image; drawn here at ``scale`` display pixels per image
    pixel so that 4x4-pixel cells are readable. The cell grid is drawn thin and the first
    block (``cells_per_block``) in yellow. Returns RGB uint8 ``(H*scale, W*scale, 3)``.
    """
    hist = hog_cells(image, orientations, pixels_per_cell, transform_sqrt)
    cr, cc = int(pixels_per_cell[0]) * scale, int(pixels_per_cell[1]) * scale
    canvas = (upscale(as_rgb(image), scale).astype(np.float32) * 0.35).astype(np.uint8)
    top = float(hist.max()) or 1.0
    half = 0.45 * min(cr, cc)
    for r in range(hist.shape[0]):
        for c in range(hist.shape[1]):
            cy, cx = r * cr + cr / 2, c * cc + cc / 2
            cv2.rectangle(canvas, (c * cc, r * cr), ((c + 1) * cc - 1, (r + 1) * cr - 1), (70, 70, 70), 1)
            for b, value in enumerate(hist[r, c]):
                if value <= 0:
                    continue
                # bin centre angle of the gradient; the glyph runs along the edge (+90 degrees)
                theta = np.deg2rad((b + 0.5) * 180.0 / orientations + 90.0)
                dx, dy = half * np.cos(theta), half * np.sin(theta)  # image rows grow downwards
                level = int(round(255 * value / top))
                cv2.line(canvas, (int(round(cx - dx)), int(round(cy + dy))), (int(round(cx + dx)), int(round(cy - dy))),
                         (level, level, level), max(1, scale // 8), cv2.LINE_AA)
    br, bc = int(cells_per_block[0]) * cr, int(cells_per_block[1]) * cc
    cv2.rectangle(canvas, (0, 0), (min(bc, canvas.shape[1]) - 1, min(br, canvas.shape[0]) - 1), (255, 210, 0), 2)
    return canvas


def hog_figure(image: Any, orientations: int = 9, pixels_per_cell: Sequence[int] = (4, 4),
               cells_per_block: Sequence[int] = (2, 2), block_norm: str = "L2-Hys",
               transform_sqrt: bool = False) -> Figure:
    """The image beside its HOG glyphs, titled with the extractor's settings."""
    fig = Figure(figsize=(8, 4.4), dpi=DPI)
    axes = fig.subplots(1, 2)
    show_image(axes[0], as_rgb(image), "image")
    show_image(axes[1], hog_glyphs(image, orientations, pixels_per_cell, cells_per_block, transform_sqrt),
          f"cell histograms ({orientations} bins over 0-180°); yellow: one block")
    fig.suptitle(f"HOG: cells {pixels_per_cell[0]}x{pixels_per_cell[1]} px, blocks "
                 f"{cells_per_block[0]}x{cells_per_block[1]} cells, {block_norm} (features.hog)", fontsize=10)
    return fig

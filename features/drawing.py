"""What every drawing shares: images in (gray or RGB; :func:`as_gray` converts colour as the
extractors that do not keep colour convert it), enlarged without smoothing, shown on matplotlib axes, matrices as annotated
grids, figures rendered to arrays.

The drawings themselves live next to what they draw: each extractor's in its module's
``draw`` hook (``features.Extractor.draw``; Sobel, HOG and SIFT keep theirs in the sibling
modules ``features/extractors/_<name>_drawing.py``), the lecture's worked examples in
``features.lecture``, the CNNs' in ``models.drawing``. Figures are built without pyplot
(:class:`matplotlib.figure.Figure`, no global state); :func:`figure_rgb` renders one.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from features._batch import check_images
from features.errors import ImageError

DPI = 100
GLYPH_SCALE = 16  # display pixels per image pixel of the HOG and SIFT drawings (32 px -> 512 px)


def as_gray(image: Any) -> np.ndarray:
    """A uint8 ``(H, W)`` image from gray or RGB input, converted as the extractors convert it."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[2] in (1, 3):
        array = array[None]
    else:
        raise ImageError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got shape {array.shape}")
    return check_images(array, "drawing")[0]


def as_rgb(image: Any) -> np.ndarray:
    """The image as uint8 ``(H, W, 3)`` (gray repeated on the three channels)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ImageError(f"drawing: images must be uint8 (0-255), got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    return np.repeat(as_gray(array)[..., None], 3, axis=2)


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement: every pixel becomes a ``scale`` x ``scale`` block."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def figure_rgb(fig: Figure) -> np.ndarray:
    """Render a figure to an RGB uint8 array ``(height, width, 3)``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def show_image(ax, image: np.ndarray, title: str, **kwargs: Any) -> None:
    """``image`` on ``ax`` without smoothing or ticks, titled."""
    ax.imshow(image, interpolation="nearest", **kwargs)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_grid(ax, values: Any, title: str, *, shade: Any = None, boxes: Sequence[tuple[int, int, int, int, str]] = (),
              fmt: str = "{:g}") -> None:
    """A matrix as a grid of annotated cells; ``shade`` marks cells (e.g. padding) grey and
    ``boxes`` = (row, col, height, width, colour) outline windows."""
    from matplotlib.patches import Rectangle

    values = np.asarray(values, dtype=np.float64)
    rows, cols = values.shape
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for r in range(rows):
        for c in range(cols):
            grey = shade is not None and bool(np.asarray(shade)[r, c])
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor="#dddddd" if grey else "white", edgecolor="#888888", lw=0.6))
            ax.text(c + 0.5, r + 0.5, fmt.format(values[r, c]), ha="center", va="center",
                    fontsize=max(5, 11 - max(rows, cols) // 2))
    for r, c, h, w, colour in boxes:
        ax.add_patch(Rectangle((c, r), w, h, fill=False, edgecolor=colour, lw=2.2))
    ax.set_title(title, fontsize=9)

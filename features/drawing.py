"""The handcrafted side drawn from the code: Sobel gradients, HOG cell histograms, SIFT
keypoints and visual words, and the lecture's worked convolution / padding / stride /
pooling examples as annotated grids.

Every function takes a uint8 image, grayscale ``(H, W)`` / ``(H, W, 1)`` or RGB
``(H, W, 3)`` (converted to gray as the extractors do, ``features._batch.check_images``),
and the extractor's own settings, and returns either an RGB uint8 array ``(H', W', 3)`` or a
matplotlib :class:`~matplotlib.figure.Figure` (built without pyplot, so no global state;
:func:`figure_rgb` renders one). The pictures are computed with the same functions the
extractors use, so what a student sees is what the classifier gets.
"""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
from matplotlib.figure import Figure

from features._batch import check_images
from features.conv import conv_output_size, convolve2d, pool2d
from features.errors import ImageError
from features.extractors.hog import _cell_histograms
from features.extractors.sift import dense_grid
from features.extractors.sobel import sobel_polar

DPI = 100
GLYPH_SCALE = 16  # display pixels per image pixel of the HOG and SIFT drawings (32 px -> 512 px)


# --------------------------------------------------------------------------- helpers
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


def _show(ax, image: np.ndarray, title: str, **kwargs: Any) -> None:
    ax.imshow(image, interpolation="nearest", **kwargs)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


# ----------------------------------------------------------------------------- Sobel
def sobel_gradients(image: Any, ksize: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gx, Gy and the gradient magnitude of the image scaled to [0, 1], float32 ``(H, W)``:
    ``cv2.Sobel`` with ``ksize`` exactly as the sobel extractor computes them."""
    gray = as_gray(image).astype(np.float32) / np.float32(255)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=ksize)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=ksize)
    magnitude, _ = sobel_polar(gray[None], ksize)
    return gx, gy, magnitude[0]


def sobel_figure(image: Any, ksize: int = 3) -> Figure:
    """The image, Gx, Gy (diverging colours, 0 = white) and the gradient magnitude."""
    gx, gy, magnitude = sobel_gradients(image, ksize)
    fig = Figure(figsize=(10, 2.9), dpi=DPI)
    axes = fig.subplots(1, 4)
    _show(axes[0], as_rgb(image), "image")
    limit = float(max(np.abs(gx).max(), np.abs(gy).max(), 1e-6))
    for ax, grad, name in ((axes[1], gx, "Gx (d/dx: vertical edges)"), (axes[2], gy, "Gy (d/dy: horizontal edges)")):
        shown = ax.imshow(grad, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes[1:3], shrink=0.8)
    _show(axes[3], magnitude, "magnitude sqrt(Gx² + Gy²)", cmap="gray")
    fig.suptitle(f"Sobel gradients, ksize={ksize} (features.sobel)", fontsize=10)
    return fig


# ------------------------------------------------------------------------------- HOG
def hog_cells(image: Any, orientations: int = 9, pixels_per_cell: Sequence[int] = (4, 4),
              transform_sqrt: bool = False) -> np.ndarray:
    """The orientation histogram of every cell, float64 ``(cells_row, cells_col, orientations)``:
    the hog extractor's own cell histograms (scikit-image's conventions), before block
    normalisation."""
    gray = as_gray(image)
    cell = (int(pixels_per_cell[0]), int(pixels_per_cell[1]))
    if gray.shape[0] < cell[0] or gray.shape[1] < cell[1]:
        raise ImageError(f"drawing: a {gray.shape[0]}x{gray.shape[1]} image holds no {cell[0]}x{cell[1]} HOG cell")
    return _cell_histograms(gray[None], int(orientations), cell, bool(transform_sqrt))[0]


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
    _show(axes[0], as_rgb(image), "image")
    _show(axes[1], hog_glyphs(image, orientations, pixels_per_cell, cells_per_block, transform_sqrt),
          f"cell histograms ({orientations} bins over 0-180°); yellow: one block")
    fig.suptitle(f"HOG: cells {pixels_per_cell[0]}x{pixels_per_cell[1]} px, blocks "
                 f"{cells_per_block[0]}x{cells_per_block[1]} cells, {block_norm} (features.hog)", fontsize=10)
    return fig


# ------------------------------------------------------------------------------ SIFT
def _scaled(keypoints: Sequence[cv2.KeyPoint], scale: int) -> list[cv2.KeyPoint]:
    # pixel i covers [i - 0.5, i + 0.5] in OpenCV's coordinates; enlarged, [i*s - 0.5, (i+1)*s - 0.5]
    return [cv2.KeyPoint((kp.pt[0] + 0.5) * scale - 0.5, (kp.pt[1] + 0.5) * scale - 0.5, kp.size * scale, kp.angle)
            for kp in keypoints]


def draw_keypoints(image: Any, keypoints: Sequence[cv2.KeyPoint], scale: int = GLYPH_SCALE,
                   color: tuple[int, int, int] = (0, 255, 0)) -> np.ndarray:
    """Keypoints as OpenCV's rich circles (diameter = size, radius line = orientation) over the
    image enlarged ``scale`` times; RGB uint8 ``(H*scale, W*scale, 3)``."""
    canvas = upscale(as_rgb(image), scale)
    return cv2.drawKeypoints(canvas, _scaled(keypoints, scale), None, color=color,
                             flags=cv2.DRAW_MATCHES_FLAGS_DRAW_RICH_KEYPOINTS)


def sift_dense_keypoints(image: Any, step: int = 4, size: int = 5) -> list[cv2.KeyPoint]:
    """The dense grid the sift extractor describes (``features.extractors.sift.dense_grid``)."""
    gray = as_gray(image)
    if gray.shape[0] < size or gray.shape[1] < size:
        return []
    return dense_grid(*gray.shape, int(step), int(size))


def sift_detected_keypoints(image: Any) -> list[cv2.KeyPoint]:
    """Keypoints found by SIFT's own detector (scale-space extrema with scale and orientation);
    often none on a 32x32 image, which is why the extractor samples densely by default."""
    return list(cv2.SIFT_create().detect(as_gray(image), None))


def sift_figure(image: Any, step: int = 4, size: int = 5, mode: str = "dense") -> Figure:
    """The dense grid (as the extractor samples it) beside the keypoints SIFT detects itself."""
    dense = sift_dense_keypoints(image, step, size)
    detected = sift_detected_keypoints(image)
    fig = Figure(figsize=(8, 4.4), dpi=DPI)
    axes = fig.subplots(1, 2)
    used = " (used: mode=dense)" if mode == "dense" else ""
    _show(axes[0], draw_keypoints(image, dense), f"dense grid: {len(dense)} keypoints, step {step}, size {size}{used}")
    note = "" if detected else " - image too small for the detector"
    used = " (used: mode=keypoints)" if mode == "keypoints" else ""
    _show(axes[1], draw_keypoints(image, detected, color=(255, 80, 80)),
          f"detected: {len(detected)} keypoints{note}{used}")
    fig.suptitle("SIFT keypoints: circle = descriptor scale, radius line = orientation (features.sift)", fontsize=10)
    return fig


def bovw_figure(histogram: Any, n_words: int, spatial_pyramid: bool = False) -> Figure:
    """An image's bag-of-visual-words vector (the sift extractor's output for it): counts of
    each codebook word, for the whole image and, with the spatial pyramid, its four quadrants."""
    vector = np.asarray(histogram, dtype=np.float64).ravel()
    regions = 5 if spatial_pyramid else 1
    if vector.size != regions * n_words:
        raise ImageError(f"drawing: a bag of words of {n_words} words x {regions} regions has "
                         f"{regions * n_words} values, got {vector.size}")
    names = ["whole image", "top left", "top right", "bottom left", "bottom right"][:regions]
    fig = Figure(figsize=(10, 1.6 + 1.3 * regions), dpi=DPI)
    axes = np.atleast_1d(fig.subplots(regions, 1, sharex=True))
    words = np.arange(n_words)
    for ax, name, part in zip(axes, names, vector.reshape(regions, n_words)):
        ax.bar(words, part, width=1.0, color="#4c72b0")
        ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=7)
        ax.text(0.995, 0.9, f"{int(np.count_nonzero(part))} words used", transform=ax.transAxes,
                ha="right", va="top", fontsize=7)
    axes[-1].set_xlabel("visual word (k-means cluster of SIFT descriptors)", fontsize=8)
    fig.suptitle(f"Bag of visual words: this image's {vector.size}-value feature vector (features.sift)", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------ the lecture's worked examples
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


# The lecture's examples (tests/test_conv.py checks their numbers against features.conv).
VERTICAL_EDGE = np.array([[1, 0, -1]] * 3)
EDGE_IMAGE = np.array([[10, 10, 10, 0, 0, 0]] * 6)
PADDED_IMAGE = np.array([[3, 3, 4, 4, 7, 0], [9, 7, 6, 5, 8, 2], [6, 5, 5, 6, 9, 2],
                         [7, 1, 3, 2, 7, 8], [0, 3, 7, 1, 8, 3], [4, 0, 4, 3, 2, 2]])
STRIDE_IMAGE = np.array([[10, 10, 10, 10, 0, 0, 0]] * 7)
POOL_INPUT = np.array([[12, 20, 30, 0], [8, 12, 2, 0], [34, 70, 37, 4], [112, 100, 25, 12]])
WORKED_EXAMPLES = ("convolution", "padding", "stride", "max_pool")


def _conv_example(image: np.ndarray, padding: int, stride: int, title: str) -> Figure:
    n, f = image.shape[0], VERTICAL_EDGE.shape[0]
    out = convolve2d(image, VERTICAL_EDGE, padding=padding, stride=stride)
    shown = np.pad(image, padding)
    shade = np.pad(np.zeros_like(image, dtype=bool), padding, constant_values=True)
    fig = Figure(figsize=(10, 3.6), dpi=DPI)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [shown.shape[1], f + 1, out.shape[1] + 1]})
    windows = [(0, 0, f, f, "tab:red")]
    if out.shape[1] > 1:
        windows.append((0, stride, f, f, "tab:blue"))
    draw_grid(axes[0], shown, f"input {n}x{n}" + (f", zero padding P={padding} (grey)" if padding else ""),
              shade=shade if padding else None, boxes=windows)
    draw_grid(axes[1], VERTICAL_EDGE, f"filter F={f} (vertical edge)")
    out_boxes = [(0, 0, 1, 1, "tab:red")] + ([(0, 1, 1, 1, "tab:blue")] if out.shape[1] > 1 else [])
    size = conv_output_size(n, f, padding, stride)
    draw_grid(axes[2], out, f"output {size}x{size}", boxes=out_boxes)
    fig.suptitle(f"{title}: W_O = (W_I - F + 2P)/S + 1 = ({n} - {f} + 2·{padding})/{stride} + 1 = {size}; "
                 f"red/blue windows give the red/blue outputs", fontsize=10)
    return fig


def _pool_example() -> Figure:
    fig = Figure(figsize=(10, 3.6), dpi=DPI)
    axes = fig.subplots(1, 3)
    quads = [(0, 0, 2, 2, "tab:red"), (0, 2, 2, 2, "tab:blue"), (2, 0, 2, 2, "tab:green"), (2, 2, 2, 2, "tab:orange")]
    draw_grid(axes[0], POOL_INPUT, "input 4x4, windows 2x2, stride 2", boxes=quads)
    cells = [(0, 0, 1, 1, "tab:red"), (0, 1, 1, 1, "tab:blue"), (1, 0, 1, 1, "tab:green"), (1, 1, 1, 1, "tab:orange")]
    draw_grid(axes[1], pool2d(POOL_INPUT, 2, 2, "max"), "max pooling", boxes=cells)
    draw_grid(axes[2], pool2d(POOL_INPUT, 2, 2, "avg"), "average pooling", boxes=cells)
    fig.suptitle("Pooling: each 2x2 window becomes one value, (4 - 2)/2 + 1 = 2 per side", fontsize=10)
    return fig


def worked_example(name: str) -> Figure:
    """One of the lecture's worked examples (:data:`WORKED_EXAMPLES`) as annotated grids,
    computed with ``features.conv``."""
    if name == "convolution":
        return _conv_example(EDGE_IMAGE, 0, 1, "Convolution (6x6 image, 3x3 filter)")
    if name == "padding":
        return _conv_example(PADDED_IMAGE, 1, 1, "Padding (6x6 -> 8x8, output stays 6x6)")
    if name == "stride":
        return _conv_example(STRIDE_IMAGE, 1, 2, "Stride 2 (7x7, P=1)")
    if name == "max_pool":
        return _pool_example()
    raise ValueError(f"unknown worked example {name!r}; allowed: {', '.join(WORKED_EXAMPLES)}")

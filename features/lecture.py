"""The lecture's worked convolution, padding, stride and pooling examples as annotated grids,
computed with ``features.conv`` (tests/test_conv.py checks their numbers against it)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from features.conv import conv_output_size, convolve2d, pool2d
from features.drawing import DPI, draw_grid

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

"""The sobel extractor drawn (its ``draw`` hook): an image's Gx, Gy and gradient magnitude,
computed by the extractor's own ``cv2.Sobel`` calls."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from matplotlib.figure import Figure

from features.drawing import DPI, as_gray, as_rgb, show_image
from features.extractors.sobel import sobel_polar


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
    show_image(axes[0], as_rgb(image), "image")
    limit = float(max(np.abs(gx).max(), np.abs(gy).max(), 1e-6))
    for ax, grad, name in ((axes[1], gx, "Gx (d/dx: vertical edges)"), (axes[2], gy, "Gy (d/dy: horizontal edges)")):
        shown = ax.imshow(grad, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes[1:3], shrink=0.8)
    show_image(axes[3], magnitude, "magnitude sqrt(Gx² + Gy²)", cmap="gray")
    fig.suptitle(f"Sobel gradients, ksize={ksize} (features.sobel)", fontsize=10)
    return fig

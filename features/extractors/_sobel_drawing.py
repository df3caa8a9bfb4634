"""The sobel extractor drawn (its ``draw`` hook): an image's Gx, Gy and gradient magnitude,
computed by the extractor's own ``cv2.Sobel`` calls; for a colour image, those of the channel
with the largest magnitude at each pixel, and a map of which channel that is."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from matplotlib.figure import Figure

from features.drawing import DPI, as_gray, as_rgb, show_image
from features.extractors.sobel import sobel_polar, strongest_channel


def _is_colour(image: Any) -> bool:
    array = np.asarray(image)
    return array.ndim == 3 and array.shape[2] == 3


def sobel_gradients(image: Any, ksize: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gx, Gy and the gradient magnitude of the image scaled to [0, 1], float32 ``(H, W)``:
    ``cv2.Sobel`` with ``ksize`` exactly as the sobel extractor computes them (for a colour
    image, each pixel's values are those of its strongest channel)."""
    if _is_colour(image):
        scaled = as_rgb(image).astype(np.float32) / np.float32(255)
        magnitude, _, channel = strongest_channel(scaled[None], ksize)
        gx = np.take_along_axis(cv2.Sobel(scaled, cv2.CV_32F, 1, 0, ksize=ksize), channel[0][..., None], 2)[..., 0]
        gy = np.take_along_axis(cv2.Sobel(scaled, cv2.CV_32F, 0, 1, ksize=ksize), channel[0][..., None], 2)[..., 0]
        return gx, gy, magnitude[0]
    gray = as_gray(image).astype(np.float32) / np.float32(255)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=ksize)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=ksize)
    magnitude, _ = sobel_polar(gray[None], ksize)
    return gx, gy, magnitude[0]


def dominant_channel_map(image: Any, ksize: int = 3) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)``: each pixel red, green or blue after the channel whose gradient the
    extractor keeps there, as bright as that gradient (black where there is none)."""
    scaled = as_rgb(image).astype(np.float32) / np.float32(255)
    magnitude, _, channel = strongest_channel(scaled[None], ksize)
    level = magnitude[0] / max(float(magnitude.max()), 1e-6)
    out = np.zeros((*level.shape, 3), dtype=np.float32)
    np.put_along_axis(out, channel[0][..., None], level[..., None], axis=2)
    return (255 * out).round().astype(np.uint8)


def sobel_figure(image: Any, ksize: int = 3) -> Figure:
    """The image, Gx, Gy (diverging colours, 0 = white) and the gradient magnitude (and, for a
    colour image, the strongest channel of every pixel)."""
    colour = _is_colour(image)
    gx, gy, magnitude = sobel_gradients(image, ksize)
    fig = Figure(figsize=(13.5 if colour else 10, 2.9), dpi=DPI)
    axes = fig.subplots(1, 5 if colour else 4)
    show_image(axes[0], as_rgb(image), "image")
    limit = float(max(np.abs(gx).max(), np.abs(gy).max(), 1e-6))
    for ax, grad, name in ((axes[1], gx, "Gx (d/dx: vertical edges)"), (axes[2], gy, "Gy (d/dy: horizontal edges)")):
        shown = ax.imshow(grad, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=axes[1:3], shrink=0.8)
    show_image(axes[3], magnitude, "magnitude sqrt(Gx² + Gy²)", cmap="gray")
    if colour:
        show_image(axes[4], dominant_channel_map(image, ksize), "strongest channel (R, G, B)")
    how = ", per pixel the channel with the largest gradient" if colour else ""
    fig.suptitle(f"Sobel gradients, ksize={ksize}{how} (features.sobel)", fontsize=10)
    return fig

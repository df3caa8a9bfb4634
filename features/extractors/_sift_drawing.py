"""The sift extractor drawn (its ``draw`` hook): the dense grid it describes, the keypoints
SIFT's detector finds, the opponent channels opponent SIFT describes, and an image's bag of visual words (which needs the fitted codebook
or the image's stored feature vector)."""
from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
from matplotlib.figure import Figure

from features.drawing import DPI, GLYPH_SCALE, as_gray, as_rgb, show_image, upscale
from features.errors import ImageError
from features.extractors.sift import dense_grid, opponent_channels


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
    show_image(axes[0], draw_keypoints(image, dense), f"dense grid: {len(dense)} keypoints, step {step}, size {size}{used}")
    note = "" if detected else " - image too small for the detector"
    used = " (used: mode=keypoints)" if mode == "keypoints" else ""
    show_image(axes[1], draw_keypoints(image, detected, color=(255, 80, 80)),
          f"detected: {len(detected)} keypoints{note}{used}")
    fig.suptitle("SIFT keypoints: circle = descriptor scale, radius line = orientation (features.sift)", fontsize=10)
    return fig


def opponent_figure(image: Any) -> Figure:
    """The image beside the three opponent channels opponent SIFT describes, as the extractor
    computes them (``features.extractors.sift.opponent_channels``)."""
    channels = opponent_channels(as_rgb(image)[None])[:, 0]
    fig = Figure(figsize=(10, 2.9), dpi=DPI)
    axes = fig.subplots(1, 4)
    show_image(axes[0], as_rgb(image), "image")
    names = ("O1 (R − G)/√2: red-green", "O2 (R + G − 2B)/√6: yellow-blue", "O3 (R + G + B)/√3: intensity")
    for ax, channel, name in zip(axes[1:], channels, names):
        # contrast stretched: a SIFT descriptor is normalised, so it does not see the channel's contrast
        show_image(ax, channel, name, cmap="gray", vmin=int(channel.min()), vmax=max(int(channel.max()), int(channel.min()) + 1))
        ax.title.set_fontsize(8)
    fig.suptitle("Opponent SIFT: a 128-d descriptor per channel at each keypoint, concatenated\n"
                 "(features.sift, colour: opponent; channels shown contrast-stretched)", fontsize=10)
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
        ax.stairs(part, np.arange(n_words + 1) - 0.5, fill=True, color="#4c72b0")  # one patch, not n_words bars
        ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=7)
        ax.text(0.995, 0.9, f"{int(np.count_nonzero(part))} words used", transform=ax.transAxes,
                ha="right", va="top", fontsize=7)
    axes[-1].set_xlabel("visual word (k-means cluster of SIFT descriptors)", fontsize=8)
    fig.suptitle(f"Bag of visual words: this image's {vector.size}-value feature vector (features.sift)", fontsize=10)
    fig.tight_layout()
    return fig

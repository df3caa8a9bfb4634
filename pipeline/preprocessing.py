"""What every image goes through before any model sees it, in ``prepare``, ``cvd predict`` and
``cvd visualize`` alike: resized to ``data.image_size`` with ``data.channels``, then deskewed
when ``data.deskew``.

Deskewing shears every image so that its ink's principal axis stands vertical.

Handwriting slants; a classifier that compares pixels or local gradients position by position
(an RBF SVM on HOG or raw pixels) must otherwise learn each slant separately. LeCun et al.
(1998, Sec. III.C) deskew MNIST this way for several of their classical classifiers: the
second-order image moments give the slant, and a horizontal shear about the ink's centroid
removes it.

For an image ``I`` (the channels' mean for colour images), with the ink's centroid
``(cx, cy)`` and central moments ``mu11 = sum (x - cx)(y - cy) I`` and
``mu02 = sum (y - cy)^2 I``, the slant is ``s = mu11 / mu02`` (column shift per row) and the
deskewed image is ``out(x, y) = I(x + s (y - cy), y)`` (bilinear, zero outside): the
centroid stays where it was and the deskewed ink has ``mu11 = 0`` up to resampling.

Ink is bright on a dark background (MNIST's convention); an image with a light background
is read as mostly ink and barely sheared. Images without vertical extent (blank, or one
row of ink) are returned unchanged.

Reference
---------
Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11):2278-2324, 1998, doi:10.1109/5.726791.
"""
from __future__ import annotations

import numpy as np

from pipeline.errors import DataError


def resize_batch(images: np.ndarray, size: int | None, channels: int) -> np.ndarray:
    """Bring (N,H,W) or (N,H,W,C) uint8 images to (N,size,size,channels)."""
    import cv2

    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    if c != channels:
        if c == 1 and channels == 3:
            images = np.repeat(images, 3, axis=3)
        elif c == 3 and channels == 1:
            images = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in images])[..., None]
        else:
            raise DataError(f"cannot convert {c}-channel images to {channels} channels")
    if size is None or (h, w) == (size, size):
        return np.ascontiguousarray(images)
    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    out = np.empty((n, size, size, channels), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = cv2.resize(im, (size, size), interpolation=interp).reshape(size, size, channels)
    return out


def preprocess(images: np.ndarray, size: int | None, channels: int, deskew: bool = False) -> np.ndarray:
    """What every image goes through before any model sees it (``prepare``, ``cvd visualize``):
    :func:`resize_batch`, then :func:`deskew_batch` when ``deskew``."""
    images = resize_batch(images, size, channels)
    return deskew_batch(images) if deskew else images


MIN_MU02 = 1e-2  # below this (in pixel^2 x intensity) an image has no vertical extent to straighten
CHUNK = 4096  # images per moment computation: bounds the float64 temporaries


def slants(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(slant, cy)`` of each image of an ``(n, H, W[, C])`` batch: the column shift per row
    ``mu11 / mu02`` (0 where the image has no vertical extent) and the ink's centroid row."""
    ink = images.astype(np.float64)
    if ink.ndim == 4:
        ink = ink.mean(axis=3)
    _, height, width = ink.shape
    rows = np.arange(height, dtype=np.float64)[None, :, None]
    cols = np.arange(width, dtype=np.float64)[None, None, :]
    mass = ink.sum(axis=(1, 2))
    safe = np.where(mass > 0, mass, 1.0)
    cy = (ink * rows).sum(axis=(1, 2)) / safe
    cx = (ink * cols).sum(axis=(1, 2)) / safe
    dy = rows - cy[:, None, None]
    dx = cols - cx[:, None, None]
    mu11 = (ink * dx * dy).sum(axis=(1, 2))
    mu02 = (ink * dy * dy).sum(axis=(1, 2))
    flat = mu02 < MIN_MU02
    return np.where(flat, 0.0, mu11 / np.where(flat, 1.0, mu02)), cy


def deskew_batch(images: np.ndarray) -> np.ndarray:
    """The ``(n, H, W[, C])`` uint8 batch with every image deskewed (same shape and dtype)."""
    import cv2

    if images.ndim not in (3, 4):
        raise ValueError(f"deskew_batch: expected an (n, H, W[, C]) batch, got shape {images.shape}")
    moments = [slants(images[start:start + CHUNK]) for start in range(0, len(images), CHUNK)]
    slant = np.concatenate([m[0] for m in moments]) if moments else np.empty(0)
    cy = np.concatenate([m[1] for m in moments]) if moments else np.empty(0)
    height, width = images.shape[1:3]
    out = np.empty_like(images)
    for i, (image, s, c) in enumerate(zip(images, slant, cy)):
        if s == 0.0:
            out[i] = image
            continue
        # WARP_INVERSE_MAP: the matrix maps each output pixel (x, y) to its source x + s (y - cy)
        matrix = np.array([[1.0, s, -s * c], [0.0, 1.0, 0.0]])
        warped = cv2.warpAffine(image, matrix, (width, height),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out[i] = warped.reshape(image.shape)
    return out

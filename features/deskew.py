"""Deskewing: shear each image so that its ink's principal axis is vertical.

Handwriting leans; a digit's slant is mostly captured by the second-order central moments of
its intensities. With ``mu11`` and ``mu02`` the image moments about the centroid
``(cx, cy)``, the horizontal shear ``x' = x - (mu11 / mu02) (y - cy)`` removes the
correlation between row and column, so the shape stands upright about its centroid row
(LeCun et al. 1998 list "deskewing" as the preprocessing that most helps the classical
classifiers on MNIST). Images with no vertical spread (``mu02`` ~ 0, e.g. blank) are kept.

Pure OpenCV per image (``cv2.moments``, ``cv2.warpAffine`` with bilinear interpolation,
zeros entering at the border), so the result is the same on every machine.

Reference
---------
Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998, doi:10.1109/5.726791 (Table / Fig. 9: "deskewing").
"""
from __future__ import annotations

import cv2
import numpy as np

from features.errors import ImageError

_FLAT = 1e-2  # mu02 below this: no vertical spread to measure a slant on


def skew(image: np.ndarray) -> float:
    """``mu11 / mu02`` of a 2-D grayscale image: how many columns the ink moves per row (0 if flat)."""
    m = cv2.moments(np.asarray(image, dtype=np.float32))
    return 0.0 if abs(m["mu02"]) < _FLAT else float(m["mu11"] / m["mu02"])


def deskew(images: np.ndarray) -> np.ndarray:
    """A deskewed copy of a uint8 batch ``(N, H, W)``: each image sheared upright about its centroid row.

    Raises:
        ImageError: not a 3-D uint8 batch.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ImageError(f"deskew needs a uint8 (N, H, W) batch; got {images.dtype} {images.shape}")
    out = np.empty_like(images)
    h, w = images.shape[1:]
    for i, image in enumerate(images):
        m = cv2.moments(image.astype(np.float32))
        if abs(m["mu02"]) < _FLAT:
            out[i] = image
            continue
        s = m["mu11"] / m["mu02"]
        cy = m["m01"] / m["m00"]
        # destination (x, y) reads the source at (x + s (y - cy), y)
        shear = np.float32([[1, s, -s * cy], [0, 1, 0]])
        out[i] = cv2.warpAffine(image, shear, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out

"""The lecture's convolution-layer arithmetic in plain numpy: output size, 2-D "convolution"
(cross-correlation, as CNN layers compute it: the kernel is not flipped), and pooling.

Output size of a convolution or pooling window of size F, zero padding P and stride S over
an input of width W_I (LeCun et al. 1998; Goodfellow, Bengio & Courville 2016, ch. 9)::

    W_O = (W_I - F + 2P) / S + 1

Everything here is exact and vectorised (``numpy.lib.stride_tricks.sliding_window_view``),
and refuses a geometry where that division is not exact instead of silently cropping
(``conv_output_size(..., exact=False)`` gives the cropped size that Keras "valid" layers use).
"""
from __future__ import annotations

from numbers import Integral

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from features.errors import ImageError, ParameterError


def _check_geometry_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ParameterError(f"{name}={value!r} is invalid; expected an integer >= {minimum}")
    return int(value)


def conv_output_size(n: int, f: int, p: int = 0, s: int = 1, *, exact: bool = True) -> int:
    """W_O = (W_I - F + 2P) / S + 1 for input size ``n``, filter ``f``, padding ``p``, stride ``s``.

    Raises ParameterError when the filter is larger than the padded input. With
    ``exact=True`` (the lecture's formula) it also raises when the division is not exact
    (the window would not tile the padded input); with ``exact=False`` it returns
    ``floor((W_I - F + 2P) / S) + 1``, what a framework's "valid" layer computes by
    dropping the rows and columns the last whole window does not reach.
    """
    n = _check_geometry_int("W_I", n, 1)
    f = _check_geometry_int("F", f, 1)
    p = _check_geometry_int("P", p, 0)
    s = _check_geometry_int("S", s, 1)
    if f > n + 2 * p:
        raise ParameterError(
            f"filter F={f} is larger than the padded input W_I + 2P = {n} + 2*{p} = {n + 2 * p}"
        )
    if exact and (n - f + 2 * p) % s:
        raise ParameterError(
            f"(W_I - F + 2P)/S + 1 = ({n} - {f} + 2*{p})/{s} + 1 = {(n - f + 2 * p) / s + 1:g} "
            "is not an integer"
        )
    return (n - f + 2 * p) // s + 1


def _as_2d(name: str, a: object) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or 0 in a.shape:
        raise ImageError(f"{name} must be a non-empty 2-D array, got shape {a.shape}")
    return a


def convolve2d(image: object, kernel: object, padding: int = 0, stride: int = 1) -> np.ndarray:
    """CNN convolution of a 2-D image: zero padding, then cross-correlation with stride.

    ``out[i, j] = sum_{u,v} padded[i*S + u, j*S + v] * kernel[u, v]`` (no kernel flip, as
    in every deep-learning framework; ``scipy.signal.correlate2d`` and ``cv2.filter2D``
    compute the same). Returns float64 of shape (W_O rows, W_O cols) from
    :func:`conv_output_size` per axis.
    """
    x = _as_2d("image", image)
    k = _as_2d("kernel", kernel)
    padding = _check_geometry_int("padding", padding, 0)
    stride = _check_geometry_int("stride", stride, 1)
    for n, f in zip(x.shape, k.shape):
        conv_output_size(n, f, padding, stride)
    if padding:
        x = np.pad(x, padding)
    windows = sliding_window_view(x, k.shape)[::stride, ::stride]
    return np.einsum("ijkl,kl->ij", windows, k)


def pool2d(x: object, size: int = 2, stride: int = 2, mode: str = "max") -> np.ndarray:
    """Max or average pooling of a 2-D array over ``size`` x ``size`` windows; float64."""
    if mode not in ("max", "avg"):
        raise ParameterError(f"mode={mode!r} is invalid; allowed: 'max', 'avg'")
    a = _as_2d("x", x)
    size = _check_geometry_int("size", size, 1)
    stride = _check_geometry_int("stride", stride, 1)
    for n in a.shape:
        conv_output_size(n, size, 0, stride)
    windows = sliding_window_view(a, (size, size))[::stride, ::stride]
    return windows.max(axis=(2, 3)) if mode == "max" else windows.mean(axis=(2, 3))

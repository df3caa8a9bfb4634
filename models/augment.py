"""Training-time data augmentation of image batches: random horizontal flips and translations.

Pure NumPy, so the batches are the same on every Keras backend and every machine: each
batch's randomness comes from a generator seeded with ``(seed, epoch, batch index)``
(:func:`batch_rng`), never from global state. Only the training images are augmented;
validation and test images are seen as they are.

* ``horizontal_flip``: each image is mirrored left-right with probability 1/2. Right for
  clothing, objects and scenes; wrong for digits and letters (a mirrored 2 is not a 2).
* ``max_shift``: each image moves by a whole number of pixels drawn uniformly from
  ``[-max_shift, max_shift]``, independently along rows and columns; what enters at the
  border is 0 (the black background of MNIST-style data). This *is* He et al.'s (2016)
  "4 pixels are padded on each side, and a 32x32 crop is randomly sampled from the padded
  image": a shift by d reads the zero-padded image from offset ``max_shift - d``, uniform in
  ``[0, 2 max_shift]``, so the shifts are exactly the random H x W crops of the image padded
  by ``max_shift`` zeros (tests/test_augment.py checks it).

Both are settings of ``cnn.augment`` in params.yaml, whose ``auto`` (the default) switches
them on for colour data and off for grayscale (``pipeline.config_schema.AugmentConfig``).

Simard et al. (2003) showed that such label-preserving distortions of the training set are
what lets a small CNN generalise past ~99 % on MNIST; the lecture's LeNet-5 (LeCun et al.
1998) itself was trained on a distorted set for its best figure.

References
----------
K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition", CVPR 2016,
section 4.2, doi:10.1109/CVPR.2016.90.
P. Y. Simard, D. Steinkraus, J. C. Platt, "Best practices for convolutional neural networks
applied to visual document analysis", ICDAR 2003, doi:10.1109/ICDAR.2003.1227801.
"""
from __future__ import annotations

import numpy as np

from models.errors import InputError, ParameterError


def check_augmentation(horizontal_flip: object, max_shift: object) -> None:
    """ParameterError unless ``horizontal_flip`` is a bool and ``max_shift`` an int >= 0."""
    if not isinstance(horizontal_flip, bool):
        raise ParameterError(f"horizontal_flip must be true or false; got {horizontal_flip!r}")
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ParameterError(f"max_shift must be a whole number of pixels >= 0; got {max_shift!r}")


def batch_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one batch: the same (seed, epoch, index) always gives the same draws."""
    return np.random.default_rng([seed, epoch, index])


def augment(images: np.ndarray, rng: np.random.Generator, *, horizontal_flip: bool = False,
            max_shift: int = 0) -> np.ndarray:
    """A randomly flipped and shifted copy of an ``(n, H, W, C)`` batch (``images`` is not changed).

    Raises:
        InputError: ``images`` is not 4-D, or ``max_shift`` is not smaller than the image.
        ParameterError: a setting of the wrong type.
    """
    check_augmentation(horizontal_flip, max_shift)
    images = np.asarray(images)
    if images.ndim != 4:
        raise InputError(f"augment needs (n, H, W, C) images; got shape {images.shape}")
    n, height, width, _ = images.shape
    if max_shift >= min(height, width):
        raise InputError(f"max_shift = {max_shift} moves a {height}x{width} image out of view; "
                         f"use at most {min(height, width) - 1}")
    out = images.copy()
    if horizontal_flip:
        flip = rng.random(n) < 0.5
        out[flip] = out[flip, :, ::-1]
    if max_shift:
        s = int(max_shift)
        padded = np.pad(out, ((0, 0), (s, s), (s, s), (0, 0)))
        # a shift of d pixels reads the padded image from offset s - d
        rows = (s - rng.integers(-s, s + 1, n))[:, None] + np.arange(height)
        cols = (s - rng.integers(-s, s + 1, n))[:, None] + np.arange(width)
        out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out

"""pipeline/preprocessing.py: moment-based deskewing, and prepare / predict applying it."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.preprocessing import deskew_batch, slants


def slanted_bar(shear: float, size: int = 28, centre_row: float = 13.5) -> np.ndarray:
    """A 3-pixel-wide bright stroke whose column moves by ``shear`` per row, about the middle."""
    rows, cols = np.mgrid[:size, :size]
    centre_col = size / 2 + shear * (rows - centre_row)
    image = np.where((np.abs(cols - centre_col) <= 1.5) & (rows >= 4) & (rows < size - 4), 255, 0)
    return image.astype(np.uint8)


def column_spread(image: np.ndarray) -> float:
    """How far the ink's mean column wanders from row to row (0 for a vertical stroke)."""
    ink = image.astype(np.float64)
    rows = ink.sum(axis=1) > 0
    centres = (ink[rows] * np.arange(ink.shape[1])).sum(axis=1) / ink[rows].sum(axis=1)
    return float(centres.max() - centres.min())


@pytest.mark.parametrize("shear", [-0.4, -0.25, 0.2, 0.35])
def test_a_slanted_stroke_is_measured_and_stood_upright(shear):
    bar = slanted_bar(shear)
    slant, _ = slants(bar[None])
    assert slant[0] == pytest.approx(shear, abs=0.02)
    upright = deskew_batch(bar[None])[0]
    assert column_spread(bar) >= 15 * abs(shear)
    assert column_spread(upright) < 1.0
    assert abs(slants(upright[None])[0][0]) < 0.01
    # the shear is about the ink's centroid: the stroke stays where it was
    cols = np.arange(28)
    assert (upright.astype(float).sum(axis=0) @ cols) / upright.sum() == pytest.approx(
        (bar.astype(float).sum(axis=0) @ cols) / bar.sum(), abs=0.3)


def test_upright_blank_and_flat_images_are_returned_unchanged():
    upright = slanted_bar(0.0)
    blank = np.zeros((28, 28), np.uint8)
    one_row = np.zeros((28, 28), np.uint8)
    one_row[10, 5:20] = 200
    batch = np.stack([upright, blank, one_row])
    np.testing.assert_array_equal(deskew_batch(batch), batch)


def test_shape_dtype_and_channels_are_kept_and_colour_follows_the_grey_slant():
    bar = slanted_bar(0.3)
    grey = deskew_batch(bar[None, ..., None])
    assert grey.shape == (1, 28, 28, 1) and grey.dtype == np.uint8
    colour = deskew_batch(np.repeat(bar[None, ..., None], 3, axis=3))
    for channel in range(3):
        np.testing.assert_array_equal(colour[..., channel], grey[..., 0])


def test_batches_larger_than_a_chunk_match_image_by_image(monkeypatch):
    import pipeline.preprocessing as deskew

    batch = np.stack([slanted_bar(s) for s in np.linspace(-0.4, 0.4, 7)])
    one_by_one = np.concatenate([deskew_batch(image[None]) for image in batch])
    monkeypatch.setattr(deskew, "CHUNK", 3)
    np.testing.assert_array_equal(deskew_batch(batch), one_by_one)


def test_a_non_batch_is_refused():
    with pytest.raises(ValueError, match=r"expected an \(n, H, W\[, C\]\) batch, got shape \(28, 28, 1, 1, 1\)"):
        deskew_batch(np.zeros((28, 28, 1, 1, 1), np.uint8))

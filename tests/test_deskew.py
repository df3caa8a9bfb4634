"""features/deskew.py and the stack extractor's deskew option."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from features import make_extractor
from features.deskew import deskew, skew
from features.errors import ImageError


def _slanted_stroke(slope: float, size: int = 28) -> np.ndarray:
    """A thick stroke whose column moves by ``slope`` per row (negative: leaning right like '/')."""
    image = np.zeros((size, size), np.uint8)
    for row in range(5, size - 5):
        cv2.circle(image, (int(round(size / 2 + slope * (row - size / 2))), row), 1, 255, -1)
    return image


@pytest.mark.parametrize("slope", [-0.4, -0.2, 0.25])
def test_a_slanted_stroke_comes_out_upright_about_its_centroid(slope):
    image = _slanted_stroke(slope)
    assert skew(image) == pytest.approx(slope, abs=0.05)
    out = deskew(image[None])[0]
    assert abs(skew(out)) < 0.02
    before, after = cv2.moments(image.astype(np.float32)), cv2.moments(out.astype(np.float32))
    assert after["m01"] / after["m00"] == pytest.approx(before["m01"] / before["m00"], abs=0.3)  # same centroid row
    assert after["m10"] / after["m00"] == pytest.approx(before["m10"] / before["m00"], abs=0.3)
    assert out.sum() == pytest.approx(image.sum(), rel=0.1)  # ink is moved, not lost


def test_upright_and_blank_images_are_kept():
    upright = _slanted_stroke(0.0)
    blank = np.zeros((28, 28), np.uint8)
    out = deskew(np.stack([upright, blank]))
    np.testing.assert_array_equal(out[1], blank)
    assert np.abs(out[0].astype(int) - upright).max() <= 1


def test_bad_batch_is_named():
    with pytest.raises(ImageError, match="uint8 .N, H, W. batch; got float64"):
        deskew(np.zeros((2, 8, 8)))


def test_stack_deskews_before_its_parts():
    images = np.stack([_slanted_stroke(s) for s in (-0.4, -0.1, 0.3)] * 4)
    stacked = make_extractor("stack", parts=["raw"], deskew=True).fit(images).transform(images)
    expected = make_extractor("raw").fit(images).transform(deskew(images))
    np.testing.assert_array_equal(stacked, expected)
    plain = make_extractor("stack", parts=["raw"]).fit(images).transform(images)
    assert not np.array_equal(stacked, plain)

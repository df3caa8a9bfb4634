"""features.sobel: the lecture's gradient example and the Sobel cell features."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from features.sobel import SobelFeatures, central_gradient
from pipeline.errors import ConfigError, DataError

# The lecture's HOG worked example; the centre pixel is 85 at (2, 2).
LECTURE_IMAGE = np.array(
    [
        [121, 10, 78, 96, 125],
        [48, 152, 68, 125, 111],
        [145, 78, 85, 89, 65],
        [154, 214, 56, 200, 66],
        [214, 87, 45, 102, 45],
    ],
    dtype=np.uint8,
)


def test_central_gradient_lecture_example():
    gx, gy, magnitude, angle = central_gradient(LECTURE_IMAGE, 2, 2)
    assert gx == 89 - 78 == 11
    # The lecture writes "Gy = 68 - 56 = 8" and then magnitude sqrt(11^2 + 8^2) = 13.6 and
    # angle atan(8/11) = 36 degrees. 68 - 56 is 12, so the correct figures are
    # magnitude sqrt(265) = 16.28 and angle atan2(12, 11) = 47.49 degrees.
    assert gy == 68 - 56 == 12
    assert magnitude == pytest.approx(math.sqrt(265)) == pytest.approx(16.2788, abs=1e-4)
    assert angle == pytest.approx(47.4896, abs=1e-4)
    # The lecture's arithmetic, for the record: with Gy = 8 its own numbers follow.
    assert math.hypot(11, 8) == pytest.approx(13.601, abs=1e-3)
    assert math.degrees(math.atan2(8, 11)) == pytest.approx(36.03, abs=1e-2)


def test_central_gradient_does_not_wrap_uint8():
    image = np.zeros((3, 3), np.uint8)
    image[1, 0] = 200  # left > right: uint8 subtraction would wrap to 56
    assert central_gradient(image, 1, 1)[0] == -200


def test_cv2_sobel_ksize1_is_the_central_difference():
    image = LECTURE_IMAGE.astype(np.float32)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=1)
    assert gx[2, 2] == 11
    assert gy[2, 2] == -12  # image rows grow downwards: down - up
    assert abs(gy[2, 2]) == 12


def test_central_gradient_rejects_border_pixel():
    with pytest.raises(ConfigError, match=r"row=0, col=2 .* 5x5 image"):
        central_gradient(LECTURE_IMAGE, 0, 2)


@pytest.mark.parametrize("ksize", [1, 3, 5, 7])
def test_features_depend_on_each_image_only(rng, ksize):
    images = rng.integers(0, 256, (13, 9, 11), dtype=np.uint8)  # odd sizes: SIMD tails
    extractor = SobelFeatures(ksize=ksize, cell_size=3).fit(images)
    whole = extractor.transform(images)
    for i in (0, 6, 12):
        np.testing.assert_array_equal(extractor.transform(images[i : i + 1])[0], whole[i])
    np.testing.assert_array_equal(extractor.set_params(chunk_size=4).transform(images), whole)


def test_feature_layout_and_normalisation(rng):
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    features = SobelFeatures(cell_size=4, orientations=8).fit_transform(images)
    assert features.shape == (5, 49 * 8 + 49) and features.dtype == np.float32
    hist = features[:, : 49 * 8].reshape(5, 49, 8)
    np.testing.assert_allclose(hist.sum(axis=2), 1, atol=1e-5)  # every cell has gradients
    # The magnitude map is the cell mean of the Sobel magnitude of the image / 255.
    image = images[2].astype(np.float32) / 255
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    expected = np.hypot(gx, gy).reshape(7, 4, 7, 4).mean(axis=(1, 3)).ravel()
    np.testing.assert_allclose(features[2, 49 * 8 :], expected, rtol=1e-4)
    without_map = SobelFeatures(magnitude_map=False).fit_transform(images)
    np.testing.assert_array_equal(without_map, features[:, : 49 * 8])


def test_unsigned_orientation_bins():
    # A vertical edge (gradient along x) votes in bin 0 whichever side is bright;
    # a horizontal edge (gradient along y, 90 degrees) votes in bin 2 of 4 (90-135).
    dark_to_bright = np.zeros((1, 8, 8), np.uint8)
    dark_to_bright[:, :, 4:] = 255
    bright_to_dark = 255 - dark_to_bright
    horizontal = dark_to_bright.transpose(0, 2, 1).copy()
    extractor = SobelFeatures(cell_size=8, orientations=4, magnitude_map=False)
    for image, expected_bin in ((dark_to_bright, 0), (bright_to_dark, 0), (horizontal, 2)):
        hist = extractor.fit_transform(image)[0]
        np.testing.assert_allclose(hist, np.eye(4)[expected_bin], atol=1e-5)


def test_blank_image_gives_zero_features():
    assert not SobelFeatures().fit_transform(np.zeros((2, 28, 28), np.uint8)).any()


def test_cell_size_larger_than_image_is_rejected():
    with pytest.raises(DataError, match=r"images are 6x6, smaller than the 8x8 minimum for cell_size=8"):
        SobelFeatures(cell_size=8).fit(np.zeros((1, 6, 6), np.uint8))


def test_invalid_ksize():
    with pytest.raises(ConfigError, match=r"ksize=4 is invalid"):
        SobelFeatures(ksize=4).fit(np.zeros((1, 8, 8), np.uint8))

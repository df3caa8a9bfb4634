"""features.extractors.sobel: the lecture's gradient example and the Sobel cell features, on
grayscale and (the strongest channel's gradient per pixel) on RGB images."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from features.errors import ImageError, ParameterError
from features.extractors.sobel import SobelFeatures, central_gradient

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
    # The lecture writes "Gy = 68 - 56 = 8" and then magnitude sqrt(11^2 + 8^2) = 13.6 and
    # angle atan(8/11) = 36 degrees. 68 - 56 is 12, so the correct figures are
    # magnitude sqrt(265) = 16.28 and angle atan2(12, 11) = 47.49 degrees (README errata).
    gx, gy, magnitude, angle = central_gradient(LECTURE_IMAGE, 2, 2)
    assert (gx, gy) == (89 - 78, 68 - 56) == (11, 12)
    assert magnitude == pytest.approx(16.2788, abs=1e-4)
    assert angle == pytest.approx(47.4896, abs=1e-4)
    assert magnitude != pytest.approx(13.6, abs=0.1) and angle != pytest.approx(36.0, abs=0.5)


def test_central_gradient_uses_only_the_four_neighbours():
    changed = LECTURE_IMAGE.copy()
    changed[2, 2] = 0  # the centre
    changed[[1, 1, 3, 3], [1, 3, 1, 3]] = 255  # the diagonal neighbours
    changed[0, :] = changed[4, :] = 7  # rows two pixels away
    assert central_gradient(changed, 2, 2) == central_gradient(LECTURE_IMAGE, 2, 2)


@pytest.mark.parametrize(
    ("bright", "angle"),
    [((slice(None), slice(2, None)), 0.0),  # brighter to the right: points right
     ((slice(0, 1), slice(None)), 90.0),  # brighter above: points up, as on paper
     ((slice(None), slice(0, 1)), 180.0),
     ((slice(2, None), slice(None)), -90.0)],
)
def test_central_gradient_direction_convention(bright, angle):
    image = np.zeros((3, 3), np.uint8)
    image[bright] = 100
    gx, gy, magnitude, result = central_gradient(image, 1, 1)
    assert result == pytest.approx(angle)
    assert magnitude == 100 and math.hypot(gx, gy) == magnitude


def test_central_gradient_does_not_wrap_uint8():
    image = np.zeros((3, 3), np.uint8)
    image[1, 0] = 200  # left > right: uint8 subtraction would wrap to 56
    assert central_gradient(image, 1, 1)[0] == -200


@pytest.mark.parametrize(("row", "col"), [(0, 2), (4, 2), (2, 0), (2, 4)])
def test_central_gradient_rejects_border_pixel(row, col):
    with pytest.raises(ParameterError, match=rf"row={row}, col={col} is not an interior pixel of the 5x5 image"):
        central_gradient(LECTURE_IMAGE, row, col)


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
    without_map = SobelFeatures(magnitude_map=False).fit_transform(images)
    np.testing.assert_array_equal(without_map, features[:, : 49 * 8])


def vertical_step(low: int = 0, high: int = 255) -> np.ndarray:
    """A batch of one 8x8 image: columns 0-3 at ``low``, 4-7 at ``high``."""
    image = np.full((1, 8, 8), low, np.uint8)
    image[:, :, 4:] = high
    return image


@pytest.mark.parametrize(("ksize", "peak"), [(1, 1.0), (3, 4.0)])
def test_magnitude_map_of_a_step_edge(ksize, peak):
    # Only columns 3 and 4 see the step (of 1.0 after /255); the [-1, 0, 1] difference gives
    # 1 there, the 3x3 Sobel (1, 2, 1)-smoothed difference 4 on rows of constant value.
    # The 8x8 cell's mean magnitude is 2 columns * 8 rows * peak / 64.
    features = SobelFeatures(ksize=ksize, cell_size=8, orientations=4).fit_transform(vertical_step())
    assert features[0, 4] == pytest.approx(2 * 8 * peak / 64, rel=1e-6)


def test_histogram_is_contrast_invariant_and_magnitude_map_scales(rng):
    low = rng.integers(0, 128, (6, 16, 16), dtype=np.uint8)
    high = low * np.uint8(2)  # exactly twice the contrast
    extractor = SobelFeatures(cell_size=4, orientations=6)
    a, b = extractor.fit_transform(low), extractor.fit_transform(high)
    n_hist = 16 * 6
    np.testing.assert_allclose(b[:, :n_hist], a[:, :n_hist], atol=1e-5)
    np.testing.assert_allclose(b[:, n_hist:], 2 * a[:, n_hist:], rtol=1e-5)
    assert a[:, n_hist:].min() > 0  # random cells: every cell has an edge to scale


def test_unsigned_orientation_bins():
    # A vertical edge (gradient along x) votes in bin 0 whichever side is bright;
    # a horizontal edge (gradient along y, 90 degrees) votes in bin 2 of 4 (90-135).
    dark_to_bright = vertical_step()
    bright_to_dark = vertical_step(255, 0)
    horizontal = dark_to_bright.transpose(0, 2, 1).copy()
    extractor = SobelFeatures(cell_size=8, orientations=4, magnitude_map=False)
    for image, expected_bin in ((dark_to_bright, 0), (bright_to_dark, 0), (horizontal, 2)):
        hist = extractor.fit_transform(image)[0]
        np.testing.assert_allclose(hist, np.eye(4)[expected_bin], atol=1e-5)


def test_blank_image_gives_zero_features():
    assert not SobelFeatures().fit_transform(np.zeros((2, 28, 28), np.uint8)).any()


def test_cell_size_larger_than_image_is_rejected():
    with pytest.raises(ImageError, match=r"images are 6x6, smaller than the 8x8 minimum for cell_size=8"):
        SobelFeatures(cell_size=8).fit(np.zeros((1, 6, 6), np.uint8))


def test_invalid_ksize():
    with pytest.raises(ParameterError, match=r"ksize=4 is invalid"):
        SobelFeatures(ksize=4).fit(np.zeros((1, 8, 8), np.uint8))


def test_colour_takes_each_pixels_strongest_channel():
    # One edge, red stepping up by 100 and green down by 200: every edge pixel keeps green's
    # gradient, so the features are those of green alone; the luma sees a step of only 87.
    image = np.zeros((1, 8, 8, 3), np.uint8)
    image[0, :, 4:, 0] = 100
    image[0, :, :4, 1] = 200
    extractor = SobelFeatures(cell_size=8, orientations=4)
    colour = extractor.fit_transform(image)[0]
    np.testing.assert_allclose(colour, extractor.fit_transform(image[..., 1])[0], rtol=1e-6)
    gray = cv2.cvtColor(image[0], cv2.COLOR_RGB2GRAY)[None]
    assert (gray[0, 0, 0], gray[0, 0, 7]) == (117, 30)
    assert colour[4] == pytest.approx(extractor.fit_transform(gray)[0, 4] * 200 / 87, rel=1e-5)


@pytest.mark.parametrize("ksize", [1, 3])
def test_colour_equals_the_channel_that_holds_the_texture(rng, ksize):
    # Red textured in the left half, green in the right, the rest flat: away from the middle
    # every gradient is one channel's, so those cells are that channel's grayscale features.
    image = np.full((1, 32, 32, 3), 90, np.uint8)
    image[0, :, :16, 0] = rng.integers(0, 256, (32, 16))
    image[0, :, 16:, 1] = rng.integers(0, 256, (32, 16))
    extractor = SobelFeatures(ksize=ksize, cell_size=4, orientations=8, magnitude_map=False)
    colour = extractor.fit_transform(image).reshape(8, 8, 8)
    red, green = (extractor.fit_transform(image[..., c]).reshape(8, 8, 8) for c in (0, 1))
    np.testing.assert_array_equal(colour[:, :3], red[:, :3])
    np.testing.assert_array_equal(colour[:, 5:], green[:, 5:])


def test_colour_features_depend_on_each_image_only(rng):
    images = rng.integers(0, 256, (7, 9, 11, 3), dtype=np.uint8)  # odd sizes: SIMD tails
    extractor = SobelFeatures(cell_size=3).fit(images)
    whole = extractor.transform(images)
    for i in (0, 6):
        np.testing.assert_array_equal(extractor.transform(images[i : i + 1])[0], whole[i])

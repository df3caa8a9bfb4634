"""features.extractors.sift: dense grid, bag of visual words, no leakage from test images, determinism,
opponent colour SIFT."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from features.errors import ImageError, ParameterError
from features.extractors.sift import SIFTFeatures, dense_grid, extract_descriptors, opponent_channels


@pytest.fixture
def train_test(rng) -> tuple[np.ndarray, np.ndarray]:
    images = rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)
    return images[:80], images[80:]


def test_dense_grid_geometry():
    grid = dense_grid(28, 28, step=4, size=8)
    assert len(grid) == 36  # floor((28 - 8) / 4) + 1 = 6 per axis
    assert (grid[0].pt, grid[-1].pt) == ((4.0, 4.0), (24.0, 24.0))
    assert {kp.size for kp in grid} == {8.0} and {kp.angle for kp in grid} == {0.0}
    assert len(dense_grid(32, 20, step=5, size=8)) == 5 * 3


def test_dense_descriptor_count(rng):
    images = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    found = extract_descriptors(images, "dense", step=4, size=8)
    assert found.vectors.shape == (4 * 36, 128) and found.vectors.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(found.image), [36] * 4)


def test_blank_image_gives_zero_histogram(train_test):
    train, _ = train_test
    blank = np.zeros((2, 28, 28), np.uint8)
    for mode in ("dense", "keypoints"):
        extractor = SIFTFeatures(mode=mode, n_words=4, spatial_pyramid=True).fit(train)
        features = extractor.transform(blank)
        assert features.shape == (2, 5 * 4)
        assert not features.any()


def test_images_without_descriptors_do_not_crash(rng, train_test):
    # detectAndCompute returns None descriptors when it finds no keypoint.
    tiny = rng.integers(0, 256, (3, 5, 5), dtype=np.uint8)
    found = extract_descriptors(tiny, "keypoints", step=4, size=8)
    assert found.vectors.shape == (0, 128) and found.image.shape == (0,) and found.xy.shape == (0, 2)
    train, test = train_test
    mixed = test.copy()
    mixed[::2] = 0
    features = SIFTFeatures(mode="keypoints", n_words=4).fit(train).transform(mixed)
    assert not features[::2].any() and features[1::2].any()


def test_codebook_uses_training_descriptors_only(train_test):
    train, test = train_test
    extractor = SIFTFeatures(n_words=8).fit(train)
    assert extractor.n_train_descriptors_ == len(extract_descriptors(train, "dense", 4, 8).vectors) == 80 * 36
    codebook = extractor.codebook_
    centres = codebook.cluster_centers_.copy()
    extractor.transform(test)
    assert extractor.codebook_ is codebook
    np.testing.assert_array_equal(extractor.codebook_.cluster_centers_, centres)
    # fit_transform on the training set is fit + transform: nothing is fitted on what it encodes.
    np.testing.assert_array_equal(SIFTFeatures(n_words=8).fit_transform(train), extractor.transform(train))


def test_deterministic_and_independent_of_chunking(train_test):
    train, test = train_test
    reference = SIFTFeatures(n_words=8, max_descriptors=1000).fit(train).transform(test)
    again = SIFTFeatures(n_words=8, max_descriptors=1000).fit(train).transform(test)
    other_chunks = SIFTFeatures(n_words=8, max_descriptors=1000, chunk_size=7).fit(train).transform(test)
    np.testing.assert_array_equal(reference, again)
    np.testing.assert_array_equal(reference, other_chunks)
    other_seed = SIFTFeatures(n_words=8, max_descriptors=1000, random_state=1).fit(train).transform(test)
    assert not np.array_equal(reference, other_seed)


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_histogram_normalisation(train_test, norm):
    train, test = train_test
    features = SIFTFeatures(n_words=8, norm=norm).fit(train).transform(test)
    lengths = features.sum(axis=1) if norm == "l1" else np.linalg.norm(features, axis=1)
    np.testing.assert_allclose(lengths, 1, rtol=1e-6)


def test_spatial_pyramid_levels(train_test):
    train, test = train_test
    features = SIFTFeatures(n_words=8, norm="l1", spatial_pyramid=True).fit(train).transform(test)
    assert features.shape == (len(test), 5 * 8)
    levels = features.reshape(len(test), 5, 8)
    # Level 0 counts every descriptor once, the four quadrants together once more.
    np.testing.assert_allclose(levels[:, 0], levels[:, 1:].sum(axis=1), atol=1e-6)
    # The dense 6x6 grid splits 3x3 per quadrant of a 28x28 image.
    np.testing.assert_allclose(levels[:, 1:].sum(axis=2), 0.125, atol=1e-6)


def test_fewer_descriptors_than_words(train_test):
    train, _ = train_test
    with pytest.raises(ImageError, match=r"gave 36 descriptors but n_words=64 needs at least 64"):
        SIFTFeatures(n_words=64).fit(train[:1])


def test_image_smaller_than_keypoint():
    with pytest.raises(ImageError, match=r"images are 6x28, smaller than the 8x8 minimum for mode='dense' with size=8"):
        SIFTFeatures().fit(np.zeros((2, 6, 28), np.uint8))


def test_fashion_mnist_features(fashion_test_images):
    images, _ = fashion_test_images
    extractor = SIFTFeatures(n_words=16, spatial_pyramid=True).fit(images[:200])
    features = extractor.transform(images[200:260])
    assert features.shape == (60, 80) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, rtol=1e-6)


# ------------------------------------------------------------------ opponent SIFT
def test_opponent_channels_are_van_de_sandes_mapped_onto_0_255(rng):
    rgb = rng.integers(0, 256, (3, 9, 9, 3), dtype=np.uint8)
    o1, o2, o3 = opponent_channels(rgb).astype(np.float64)
    r, g, b = np.moveaxis(rgb.astype(np.float64), 3, 0)
    # O1 = (R - G)/sqrt 2, O2 = (R + G - 2B)/sqrt 6, O3 = (R + G + B)/sqrt 3, each mapped linearly onto 0-255
    for channel, exact, low, high in ((o1, (r - g) / np.sqrt(2), -255 / np.sqrt(2), 255 / np.sqrt(2)),
                                      (o2, (r + g - 2 * b) / np.sqrt(6), -510 / np.sqrt(6), 510 / np.sqrt(6)),
                                      (o3, (r + g + b) / np.sqrt(3), 0, 765 / np.sqrt(3))):
        assert np.abs(channel - 255 * (exact - low) / (high - low)).max() <= 0.5 + 1e-9  # rounded
    assert opponent_channels(np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]], np.uint8))[:, 0, 0].tolist() == [
        [255, 0, 128], [191, 191, 0], [85, 85, 85]]


def test_opponent_descriptors_are_each_channels_sift_concatenated(rng):
    images = rng.integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
    found = extract_descriptors(images, "dense", step=4, size=8, colour="opponent")
    assert found.vectors.shape == (3 * 16, 384)
    sift, grid = cv2.SIFT_create(), dense_grid(20, 20, 4, 8)
    expected = [np.hstack([sift.compute(np.ascontiguousarray(channel), grid)[1] for channel in channels])
                for channels in np.moveaxis(opponent_channels(images), 1, 0)]
    np.testing.assert_array_equal(found.vectors, np.concatenate(expected))
    # the intensity part is grayscale SIFT of (R + G + B)/3
    o3 = opponent_channels(images)[2]
    np.testing.assert_array_equal(found.vectors[:, 256:], extract_descriptors(o3, "dense", 4, 8).vectors)


def test_opponent_keypoints_are_detected_on_the_intensity(rng):
    images = cv2.resize(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), (64, 64))[None]
    found = extract_descriptors(images, "keypoints", step=4, size=8, colour="opponent")
    detected = cv2.SIFT_create().detect(opponent_channels(images)[2, 0], None)
    assert 0 < len(found.vectors) <= len(detected)
    assert {tuple(xy) for xy in found.xy} <= {kp.pt for kp in detected}


def test_opponent_sift_sees_an_isoluminant_edge(train_test):
    image = np.zeros((1, 28, 28, 3), np.uint8)
    image[..., 0] = 200
    image[:, :, 14:] = (0, 102, 0)  # red beside green, both of luma 60
    train, _ = train_test
    colour_train = np.stack([train[:10]] * 3, axis=3)
    colour_train[::2, ..., 2] = 0
    gray_sift = SIFTFeatures(n_words=4).fit(colour_train)
    assert not gray_sift.transform(image).any()  # the luma is flat: no descriptor
    opponent = SIFTFeatures(n_words=4, colour="opponent").fit(colour_train)
    assert opponent.codebook_.cluster_centers_.shape == (4, 384)
    assert opponent.transform(image).any()


def test_unknown_colour():
    with pytest.raises(ParameterError, match=r"colour='rgb' is invalid; allowed: 'gray', 'opponent'"):
        SIFTFeatures(colour="rgb").fit(np.zeros((1, 28, 28), np.uint8))

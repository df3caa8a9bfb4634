"""features.extractors.sift: dense grid, bag of visual words, no leakage from test images, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from features.errors import ImageError
from features.extractors.sift import SIFTFeatures, dense_grid, extract_descriptors


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

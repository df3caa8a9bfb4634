"""Behaviour every extractor shares: scikit-learn API, dtype/shape, colour input,
parallelism, input validation and the registry."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline

from features import REGISTRY, get_extractor_class, make_extractor
from pipeline.errors import ConfigError, DataError

# Small but valid parameters for each extractor (SIFT: a small codebook, for speed).
PARAMS = {
    "raw": {},
    "sobel": {},
    "hog": {"pixels_per_cell": [4, 4], "cells_per_block": [2, 2]},
    "sift": {"n_words": 8},
}
EXPECTED_D = {"raw": 784, "sobel": 49 * 8 + 49, "hog": 1296, "sift": 8}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8)


def test_registry_covers_every_extractor():
    assert sorted(REGISTRY) == sorted(PARAMS)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_float32_n_by_d(name, images):
    features = make_extractor(name, **PARAMS[name]).fit(images[:30]).transform(images[30:])
    assert features.shape == (10, EXPECTED_D[name])
    assert features.dtype == np.float32
    assert np.isfinite(features).all()


def test_raw_pixels_values(images):
    np.testing.assert_array_equal(
        make_extractor("raw").fit_transform(images), images.reshape(40, -1).astype(np.float32) / 255
    )
    np.testing.assert_array_equal(make_extractor("raw", scale=False).fit_transform(images), images.reshape(40, -1))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_sklearn_clone_params_and_pipeline(name, images):
    extractor = make_extractor(name, **PARAMS[name])
    copy = clone(extractor)
    assert copy.get_params() == extractor.get_params()
    assert copy.set_params(n_jobs=1) is copy
    labels = np.arange(len(images)) % 2
    pipe = Pipeline([("features", extractor), ("classifier", NearestCentroid())]).fit(images, labels)
    assert pipe.predict(images).shape == (len(images),)
    fresh = clone(pipe).named_steps["features"]  # clone copies parameters, not the fitted state
    assert hasattr(pipe.named_steps["features"], "image_shape_") and not hasattr(fresh, "image_shape_")
    with pytest.raises(NotFittedError):
        fresh.transform(images)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_rgb_batches_are_converted_to_grayscale(name, images):
    rgb = np.random.default_rng(1).integers(0, 256, (40, 28, 28, 3), dtype=np.uint8)
    gray = np.stack([cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in rgb])
    extractor = make_extractor(name, **PARAMS[name]).fit(images)
    np.testing.assert_array_equal(extractor.transform(rgb), extractor.transform(gray))
    np.testing.assert_array_equal(extractor.transform(images[..., None]), extractor.transform(images))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parallel_and_chunked_equal_serial(name, images):
    serial = make_extractor(name, **PARAMS[name]).fit(images[:30])
    parallel = make_extractor(name, **PARAMS[name], chunk_size=16, n_jobs=2).fit(images[:30])
    np.testing.assert_array_equal(parallel.transform(images), serial.transform(images))


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((0, 28, 28), np.uint8), r"empty batch of images \(shape \(0, 28, 28\)\)"),
        (np.zeros((2, 28, 28), np.float32), r"must be uint8 \(0-255\), got dtype float32"),
        (np.zeros((28, 28), np.uint8), r"shape \(N, H, W\) or \(N, H, W, 3\), got shape \(28, 28\)"),
        (np.zeros((2, 28, 28, 4), np.uint8), r"got shape \(2, 28, 28, 4\)"),
    ],
)
def test_bad_batches(name, batch, message):
    extractor = make_extractor(name, **PARAMS[name])
    with pytest.raises(DataError, match=message):
        extractor.fit(batch)


@pytest.mark.parametrize(
    ("name", "params", "size", "minimum"),
    [
        ("hog", {}, "6x6", "8x8"),
        ("sobel", {"cell_size": 7}, "6x6", "7x7"),
        ("sift", {}, "6x6", "8x8"),
    ],
)
def test_images_too_small(name, params, size, minimum):
    with pytest.raises(DataError, match=rf"images are {size}, smaller than the {minimum} minimum"):
        make_extractor(name, **params).fit(np.zeros((2, 6, 6), np.uint8))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_transform_checks_image_size(name, images):
    extractor = make_extractor(name, **PARAMS[name]).fit(images)
    with pytest.raises(DataError, match=r"images are 32x32 but the extractor was fitted on 28x28"):
        extractor.transform(np.zeros((2, 32, 32), np.uint8))


def test_unknown_parameter():
    with pytest.raises(ConfigError) as error:
        make_extractor("hog", orientation=9)
    assert str(error.value) == (
        "features.hog: unknown parameter 'orientation'; allowed: block_norm, cells_per_block, "
        "chunk_size, n_jobs, orientations, pixels_per_cell, transform_sqrt"
    )


def test_invalid_value_is_caught_by_make_extractor():
    with pytest.raises(ConfigError, match=r"SIFTFeatures: norm='l3' is invalid; allowed: 'l1', 'l2'"):
        make_extractor("sift", norm="l3")


def test_unknown_extractor():
    with pytest.raises(ConfigError, match=r"unknown feature extractor 'surf'; allowed: hog, raw, sift, sobel"):
        get_extractor_class("surf")


def test_package_import_is_light():
    code = "import sys, features; print(sorted({'cv2', 'sklearn', 'joblib', 'skimage'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""The extractor registry and the behaviour every registered extractor shares: the
scikit-learn estimator contract (scikit-learn's own checks), dtype/shape, colour input,
parallelism and input validation."""
from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import warnings
import zlib
from unittest import SkipTest

import cv2
import numpy as np
import pytest
import sklearn.utils.estimator_checks as estimator_checks
from helpers import REPO_ROOT
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError, SkipTestWarning
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks

import features.extractors
from features import Extractor, extractor_names, get_extractor, make_extractor
from features._batch import ImageFeatureExtractor
from features.errors import ImageError, ParameterError
from features.extractors.raw import RawPixels

# Small but valid parameters for each extractor (SIFT: a small codebook, for speed).
PARAMS = {
    "raw": {},
    "colorhist": {},
    "sobel": {},
    "hog": {"pixels_per_cell": [4, 4], "cells_per_block": [2, 2]},
    "kmeans": {"n_centroids": 4, "n_patches": 200},
    "sift": {"n_words": 4},
    "stack": {"parts": ["hog", "raw"], "overrides": {"hog": {"pixels_per_cell": [4, 4], "cells_per_block": [2, 2]}}},
}
EXPECTED_D = {"raw": 784, "colorhist": 2 * 2 * 8 * 4 * 4, "sobel": 49 * 8 + 49, "hog": 1296, "kmeans": 4 * 4, "sift": 4,
              "stack": 1296 + 784}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8)


def small(name: str, **params):
    return make_extractor(name, **PARAMS[name], **params)


# ------------------------------------------------------------------------------ registry
def test_discovery_lists_exactly_the_extractor_modules():
    folder = REPO_ROOT / "features" / "extractors"
    modules = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    assert extractor_names() == tuple(modules)
    assert set(PARAMS) == set(modules)  # every extractor is exercised below


@pytest.mark.parametrize("name", extractor_names())
def test_every_module_defines_its_extractor(name):
    entry = get_extractor(name)
    assert isinstance(entry, Extractor) and entry.name == name
    assert entry.transformer.__module__ == f"features.extractors.{name}"
    assert issubclass(entry.transformer, ImageFeatureExtractor)
    assert entry.citation.strip() and entry.summary.strip()
    assert {"n_jobs", "chunk_size"} <= set(entry.parameters())


@pytest.fixture
def extra_extractor_dir(tmp_path, monkeypatch):
    """A second folder on features.extractors' search path; its modules are forgotten afterwards."""
    monkeypatch.setattr(features.extractors, "__path__", [*features.extractors.__path__, str(tmp_path)])
    yield tmp_path
    for module in [m for m in sys.modules if m.startswith("features.extractors.")]:
        if getattr(sys.modules[module], "__file__", "").startswith(str(tmp_path)):
            del sys.modules[module]


def test_one_new_module_is_one_new_extractor(extra_extractor_dir, images):
    (extra_extractor_dir / "inverted.py").write_text(textwrap.dedent('''
        from features import Extractor
        from features.extractors.raw import RawPixels

        class InvertedPixels(RawPixels):
            def _transform_chunk(self, images):
                return super()._transform_chunk(255 - images)

        EXTRACTOR = Extractor(transformer=InvertedPixels, citation="none", summary="1 - raw")
    '''))
    (extra_extractor_dir / "_helper.py").write_text("")
    assert extractor_names() == tuple(sorted((*PARAMS, "inverted")))
    assert get_extractor("inverted").name == "inverted"
    inverted = make_extractor("inverted", chunk_size=7).fit_transform(images)
    np.testing.assert_allclose(inverted, 1 - make_extractor("raw").fit_transform(images), atol=1e-7)


def test_module_without_extractor_entry_is_a_programming_error(extra_extractor_dir):
    (extra_extractor_dir / "incomplete.py").write_text("class Incomplete:\n    pass\n")
    with pytest.raises(TypeError, match=r"incomplete\.py must define EXTRACTOR = Extractor"):
        get_extractor("incomplete")


def test_package_import_is_light():
    code = (
        "import sys, features; names = features.extractor_names(); "
        "print(sorted({'cv2', 'sklearn', 'joblib', 'skimage', 'numpy'} & set(sys.modules)), "
        "sorted(m for m in sys.modules if m.startswith('features.extractors.')), names)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO_ROOT).stdout
    assert out.strip() == f"[] [] {tuple(sorted(PARAMS))}"


def test_unknown_extractor():
    with pytest.raises(ParameterError, match=rf"^unknown feature extractor 'surf'; allowed: {', '.join(sorted(PARAMS))}$"):
        get_extractor("surf")
    with pytest.raises(ParameterError, match=r"unknown feature extractor '_batch'"):
        make_extractor("_batch")  # a module of the package, but not an extractor


def test_unknown_parameters():
    with pytest.raises(ParameterError) as error:
        make_extractor("hog", orientation=9)
    assert str(error.value) == (
        "HOGFeatures: unknown parameter 'orientation'; allowed: block_norm, cells_per_block, "
        "chunk_size, n_jobs, orientations, pixels_per_cell, transform_sqrt"
    )
    with pytest.raises(ParameterError, match=r"^RawPixels: unknown parameters 'random_state', 'scaled'; allowed: "
                                             r"chunk_size, n_jobs, scale$"):
        make_extractor("raw", scaled=True, random_state=0)


def test_invalid_value_is_caught_by_make_extractor():
    with pytest.raises(ParameterError, match=r"SIFTFeatures: norm='l3' is invalid; allowed: 'l1', 'l2'"):
        make_extractor("sift", norm="l3")


# ------------------------------------------------------------- scikit-learn's own checks
# The extractors' tags say they take 3-D image batches, not 2-D arrays, so scikit-learn's
# generic suite stops after the clone check (test_generic_suite_stops_at_the_input_tags).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SkipTestWarning)  # expected, see the test below
    generic_suite = parametrize_with_checks([small(name) for name in sorted(PARAMS)])


@generic_suite
def test_sklearn_generic_suite(estimator, check):
    check(estimator)


def test_generic_suite_stops_at_the_input_tags():
    with pytest.warns(SkipTestWarning, match=r"Can't test estimator RawPixels which requires input"):
        checks = [check.func.__name__ for _, check in estimator_checks_generator(make_extractor("raw"))]
    assert checks == ["check_estimator_cloneable"]


# The individual checks that apply to image transformers. Those that need data get uint8
# image batches instead of their 2-D float arrays (see `on_check_data`).
NO_DATA_CHECKS = (
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
    "check_no_attributes_set_in_init",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
)
DATA_CHECKS = (
    "check_fit_score_takes_y",
    "check_requires_y_none",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_transformers_unfitted",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_dict_unchanged",
    "check_methods_sample_order_invariance",
    "check_estimators_pickle",
    "check_pipeline_consistency",
    "check_readonly_memmap_input",
)
# Left out, each for a reason that has nothing to do with a bug:
# - 2-D by construction: check_transformer_general, check_transformer_data_not_an_array,
#   check_methods_subset_invariance, check_fit2d_*, check_fit1d, check_n_features_in*,
#   check_estimator_sparse_*, check_sample_weights_* (no sample_weight either);
# - input validation of float/object/complex/NaN/empty 2-D data, which the extractors reject
#   with their own messages (test_bad_batches): check_estimators_dtypes, check_dtype_object,
#   check_complex_data, check_estimators_nan_inf, check_estimators_empty_data_messages,
#   check_fit2d_predict1d, check_transformer_preserve_dtypes;
# - not a classifier/regressor/clusterer/outlier detector, no predict/decision_function/
#   get_feature_names_out/n_iter_/copy/positive_only: those checks would pass vacuously.


def _rows_as_images(X) -> np.ndarray:
    """scikit-learn's 2-D check data as a uint8 (n, 16, 16) batch: one image per row, seeded by the
    row's bytes (so reordering rows reorders images); read-only when X is."""
    X = np.asarray(X)
    images = np.stack([np.random.default_rng(zlib.crc32(np.ascontiguousarray(row).tobytes())).integers(
        0, 256, (16, 16), dtype=np.uint8) for row in X]) if len(X) else np.zeros((0, 16, 16), np.uint8)
    images.setflags(write=X.flags.writeable)
    return images


FED_TO_FIT: list[np.ndarray] = []  # the image batches the check-data extractors learnt from


def on_check_data(cls: type) -> type:
    """``cls`` taking scikit-learn's 2-D check data as images (:func:`_rows_as_images`): the checks
    that need data then run unpatched on the extractor's own fit/transform. A module-level class
    (pickle finds it by name); it records what ``fit`` learnt from in :data:`FED_TO_FIT`."""
    name = f"{cls.__name__}OnCheckData"
    if name not in globals():
        def _check_images(self, X):
            X = np.asarray(X)
            return super(checked, self)._check_images(_rows_as_images(X) if X.ndim == 2 else X)

        def _fit_images(self, images):
            FED_TO_FIT.append(images)
            return super(checked, self)._fit_images(images)

        checked = type(name, (cls,), {"_check_images": _check_images, "_fit_images": _fit_images,
                                      "__module__": __name__, "__qualname__": name})
        globals()[name] = checked
    return globals()[name]


def with_check_data(check_name: str, estimator):
    """The estimator to give ``check_name``: a data check gets its :func:`on_check_data` twin."""
    if check_name not in DATA_CHECKS:
        return estimator
    return on_check_data(type(estimator))(**estimator.get_params(deep=False))


@pytest.fixture
def image_data_for_checks() -> list:
    """The batches fit received in this test (scikit-learn's data checks, as images)."""
    FED_TO_FIT.clear()
    return FED_TO_FIT


def run_check(check_name: str, estimator) -> None:
    """Run one check; a skip (SkipTest or SkipTestWarning) fails: the check must really run."""
    check = getattr(estimator_checks, check_name)
    estimator = with_check_data(check_name, estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkipTestWarning)
        try:
            check(type(estimator).__name__, estimator)
        except SkipTest as skip:
            pytest.fail(f"{check_name} skipped itself: {skip}")


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("check_name", NO_DATA_CHECKS + DATA_CHECKS)
def test_sklearn_check(name, check_name, image_data_for_checks):
    run_check(check_name, small(name))
    if check_name in DATA_CHECKS and check_name != "check_transformers_unfitted":
        assert image_data_for_checks, f"{check_name} never fitted the extractor"
        assert all(X.dtype == np.uint8 and X.ndim == 3 for X in image_data_for_checks)


# Deliberately broken extractors, one per check: each check must catch its bug, which shows
# that it runs on these transformers and tests something.
class _InitSetsAttribute(RawPixels):
    def __init__(self, scale=True, n_jobs=1, chunk_size=2048):
        super().__init__(scale, n_jobs, chunk_size)
        self.history_ = []


class _InitConvertsParameter(RawPixels):
    def __init__(self, scale=True, n_jobs=1, chunk_size=2048, crop=(0, 0)):
        super().__init__(scale, n_jobs, chunk_size)
        self.crop = list(crop)


class _InitValidates(RawPixels):
    def __init__(self, scale=True, n_jobs=1, chunk_size=2048):
        super().__init__(scale, n_jobs, chunk_size)
        self._check_params()


class _SetParamsIgnored(RawPixels):
    def set_params(self, **params):
        return self


class _DeepParamsLoseOne(RawPixels):
    def get_params(self, deep=True):
        params = super().get_params(deep)
        if deep:
            del params["scale"]
        return params


class _ReprFails(RawPixels):
    def __repr__(self, N_CHAR_MAX=700):
        raise RuntimeError("no repr")


class _OldTagsApi(RawPixels):
    def _more_tags(self):
        return {"stateless": True}


class _InvalidTag(RawPixels):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = "yes"
        return tags


class _WrongMixinOrder(BaseEstimator, TransformerMixin):
    def __init__(self, scale=True):
        self.scale = scale

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X).reshape(len(X), -1)


class _FitWithoutY(RawPixels):
    def fit(self, X):
        return super().fit(X)


class _FitNeedsY(RawPixels):
    def fit(self, X, y=None):
        if y is None:
            raise ValueError("y is required")
        return super().fit(X, y)


class _FitReturnsNone(RawPixels):
    def fit(self, X, y=None):
        super().fit(X, y)


class _FitShrinksChunks(RawPixels):
    def fit(self, X, y=None):
        self.chunk_size = min(self.chunk_size, len(X))
        return super().fit(X, y)


class _FitAddsPublicAttribute(RawPixels):
    def fit(self, X, y=None):
        self.n_images = len(X)
        return super().fit(X, y)


class _TransformWithoutFit(RawPixels):
    def transform(self, X):
        return self._transform_chunk(self._check_images(X))


class _FittedBeforeFit(RawPixels):
    def __sklearn_is_fitted__(self):
        return True


class _FitAccumulates(RawPixels):
    def _fit_images(self, images):
        self.offset_ = getattr(self, "offset_", 0.0) + float(images.mean())

    def _transform_chunk(self, images):
        return super()._transform_chunk(images) + np.float32(self.offset_)


class _TransformRemembersBatch(RawPixels):
    def transform(self, X):
        self.last_batch_size_ = len(X)
        return super().transform(X)


class _TransformDependsOnPosition(RawPixels):
    def _transform_chunk(self, images):
        flat = super()._transform_chunk(images)
        return flat * np.arange(1, len(flat) + 1, dtype=np.float32)[:, None]


class _StateLostInPickle(RawPixels):
    def _fit_images(self, images):
        self.mean_ = images.mean(axis=0, dtype=np.float32).reshape(-1) / np.float32(255)

    def _transform_chunk(self, images):
        return super()._transform_chunk(images) - self.mean_

    def __getstate__(self):
        state = super().__getstate__()
        return state | {"mean_": np.zeros_like(state["mean_"])}


class _TransformRandom(RawPixels):
    def _transform_chunk(self, images):
        return super()._transform_chunk(images) + np.random.random(1).astype(np.float32)


class _FitWritesInPlace(RawPixels):
    def _fit_images(self, images):
        images[:, 0, 0] = 0  # e.g. blanking a border pixel in the caller's array


# check -> (broken extractor, what the check raises on it): the check's own verdict
# (AssertionError), or the estimator's error where the check lets that through.
BROKEN = {
    "check_estimator_cloneable": (_InitConvertsParameter, AssertionError, "Cloning of _InitConvertsParameter failed"),
    "check_estimator_repr": (_ReprFails, AssertionError, "Repr of _ReprFails failed"),
    "check_estimator_tags_renamed": (_OldTagsApi, TypeError, "has defined either `_more_tags`"),
    "check_valid_tag_types": (_InvalidTag, AssertionError, "Tag values need to be of a certain type"),
    "check_mixin_order": (_WrongMixinOrder, AssertionError, "inheriting from mixins in the wrong order"),
    "check_no_attributes_set_in_init": (_InitSetsAttribute, AssertionError, r"Found attributes \['history_'\]"),
    "check_do_not_raise_errors_in_init_or_set_params": (_InitValidates, ParameterError, "is invalid"),
    "check_parameters_default_constructible": (_InitConvertsParameter, RuntimeError, "modifies parameter crop"),
    "check_get_params_invariance": (_DeepParamsLoseOne, AssertionError, None),
    "check_set_params": (_SetParamsIgnored, AssertionError, "does not match what was passed to set_params"),
    "check_fit_score_takes_y": (_FitWithoutY, TypeError, "takes 2 positional arguments but 3 were given"),
    "check_requires_y_none": (_FitNeedsY, ValueError, "y is required"),
    "check_estimators_fit_returns_self": (_FitReturnsNone, AssertionError, None),
    "check_estimators_overwrite_params": (_FitShrinksChunks, AssertionError, "parameter chunk_size from 2048 to 21"),
    "check_dont_overwrite_parameters": (_FitAddsPublicAttribute, AssertionError, r"public attribute\(s\)"),
    "check_transformers_unfitted": (_TransformWithoutFit, AssertionError, "does not raise an error"),
    "check_fit_check_is_fitted": (_FittedBeforeFit, AssertionError, "passes check_is_fitted before being fit"),
    "check_fit_idempotent": (_FitAccumulates, AssertionError, "Idempotency check failed for method transform"),
    "check_dict_unchanged": (_TransformRemembersBatch, AssertionError, r"changes __dict__ during transform"),
    "check_methods_sample_order_invariance": (_TransformDependsOnPosition, AssertionError, "not invariant"),
    "check_estimators_pickle": (_StateLostInPickle, AssertionError, "Not equal to tolerance"),
    "check_pipeline_consistency": (_TransformRandom, AssertionError, "Not equal to tolerance"),
    "check_readonly_memmap_input": (_FitWritesInPlace, ValueError, "read-only"),
}


def test_every_check_has_a_broken_extractor():
    assert sorted(BROKEN) == sorted(NO_DATA_CHECKS + DATA_CHECKS)


@pytest.mark.parametrize("check_name", sorted(BROKEN))
def test_check_catches_its_broken_extractor(check_name, image_data_for_checks):
    broken, error, message = BROKEN[check_name]
    with pytest.raises(error, match=message):
        run_check(check_name, broken())


# ------------------------------------------------------------------- shared behaviour
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_float32_n_by_d(name, images):
    features_ = small(name).fit(images[:30]).transform(images[30:])
    assert features_.shape == (10, EXPECTED_D[name])
    assert features_.dtype == np.float32
    assert np.isfinite(features_).all()


def test_raw_pixels_values(images):
    np.testing.assert_array_equal(
        make_extractor("raw").fit_transform(images), images.reshape(40, -1).astype(np.float32) / 255
    )
    np.testing.assert_array_equal(make_extractor("raw", scale=False).fit_transform(images), images.reshape(40, -1))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_clone_pickle_and_refit_give_equal_features(name, images):
    fitted = small(name).fit(images[:30])
    expected = fitted.transform(images[30:])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).transform(images[30:]), expected)
    np.testing.assert_array_equal(clone(fitted).fit(images[:30]).transform(images[30:]), expected)
    np.testing.assert_array_equal(fitted.fit(images[:30]).transform(images[30:]), expected)  # idempotent


# colorhist on gray images fills only its intensity bins: NearestCentroid warns of the constant others
@pytest.mark.filterwarnings("ignore:self.within_class_std_dev_ has at least 1 zero:UserWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_in_a_pipeline(name, images):
    labels = np.arange(len(images)) % 2
    pipe = Pipeline([("features", small(name)), ("classifier", NearestCentroid())]).fit(images, labels)
    assert pipe.predict(images).shape == (len(images),)
    fresh = clone(pipe).named_steps["features"]  # clone copies parameters, not the fitted state
    assert hasattr(pipe.named_steps["features"], "image_shape_") and not hasattr(fresh, "image_shape_")
    with pytest.raises(NotFittedError):
        fresh.transform(images)


# Colour (data.channels: 3): what each extractor does with an RGB batch.
KEEP_COLOUR = {"raw", "sobel", "hog", "colorhist", "kmeans", "stack"}  # stack: its parts as alone (test_stack.py)
GRAY_ON_GRAY = {"sobel", "hog", "colorhist"}  # R = G = B gives the grayscale features


@pytest.fixture(scope="module")
def rgb_images() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (40, 28, 28, 3), dtype=np.uint8)


def test_which_extractors_keep_colour():
    assert {name for name in PARAMS if small(name).keeps_colour} == KEEP_COLOUR
    assert small("sift", colour="opponent").keeps_colour


@pytest.mark.parametrize("name", sorted(set(PARAMS) - KEEP_COLOUR))
def test_rgb_batches_are_converted_to_grayscale(name, images, rgb_images):
    # ITU-R BT.601 luma, rounded: what the extractors document for colour input.
    gray = np.stack([cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in rgb_images])
    extractor = small(name).fit(images)
    np.testing.assert_array_equal(extractor.transform(rgb_images), extractor.transform(gray))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_one_channel_batches_are_grayscale(name, images):
    extractor = small(name).fit(images)
    np.testing.assert_array_equal(extractor.transform(images[..., None]), extractor.transform(images))


@pytest.mark.parametrize("name", sorted(GRAY_ON_GRAY))
def test_gray_images_given_as_rgb_keep_their_features(name, images):
    rgb = np.repeat(images[..., None], 3, axis=3)
    np.testing.assert_array_equal(small(name).fit_transform(rgb), small(name).fit_transform(images))


def isoluminant_edges() -> np.ndarray:
    """Red beside green of the same BT.601 luma (60): an edge that grayscale conversion erases."""
    images = np.zeros((4, 28, 28, 3), np.uint8)
    images[..., 0] = 200
    for i, column in enumerate((7, 11, 14, 20)):
        images[i, :, column:] = (0, 102, 0)
    return images


@pytest.mark.parametrize("name", sorted(KEEP_COLOUR - {"stack"}))
def test_colour_features_see_an_edge_that_gray_loses(name):
    colour = isoluminant_edges()
    gray = np.stack([cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in colour])
    assert (gray == 60).all()
    as_rgb = np.repeat(gray[..., None], 3, axis=3)
    extractor = small(name).fit(colour)
    assert extractor.image_shape_ == (28, 28, 3)
    features = extractor.transform(colour)
    assert not np.array_equal(features, extractor.transform(as_rgb))
    assert len({row.tobytes() for row in features}) == 4  # the edge's place (and colour share) is seen


def test_raw_rgb_pixels_are_row_column_channel(rgb_images):
    np.testing.assert_array_equal(make_extractor("raw", scale=False).fit_transform(rgb_images),
                                  rgb_images.reshape(40, 28 * 28 * 3))


@pytest.mark.parametrize("name", sorted(KEEP_COLOUR) + ["sift"])
def test_colour_parallel_chunked_and_pickled_equal_serial(name, rgb_images):
    params = {"colour": "opponent"} if name == "sift" else {}
    serial = small(name, **params).fit(rgb_images[:30])
    expected = serial.transform(rgb_images)
    chunked = small(name, chunk_size=7, n_jobs=2, **params).fit(rgb_images[:30])
    np.testing.assert_array_equal(chunked.transform(rgb_images), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(serial)).transform(rgb_images), expected)
    with pytest.raises(ImageError, match=r"images are 28x28 but the extractor was fitted on 28x28x3"):
        serial.transform(rgb_images[..., 0])


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parallel_and_chunked_equal_serial(name, images):
    serial = small(name).fit(images[:30])
    parallel = small(name, chunk_size=16, n_jobs=2).fit(images[:30])
    one_by_one = small(name, chunk_size=1, n_jobs=2).fit(images[:30])
    np.testing.assert_array_equal(parallel.transform(images), serial.transform(images))
    np.testing.assert_array_equal(one_by_one.transform(images), serial.transform(images))


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
    with pytest.raises(ImageError, match=message):
        small(name).fit(batch)


@pytest.mark.parametrize(
    ("name", "params", "size", "minimum"),
    [
        ("hog", {}, "6x6", "8x8"),
        ("sobel", {"cell_size": 7}, "6x6", "7x7"),
        ("sift", {}, "6x6", "8x8"),
        ("kmeans", {}, "6x6", "7x7"),
        ("colorhist", {"grid": 7}, "6x6", "7x7"),
    ],
)
def test_images_too_small(name, params, size, minimum):
    with pytest.raises(ImageError, match=rf"images are {size}, smaller than the {minimum} minimum"):
        make_extractor(name, **params).fit(np.zeros((2, 6, 6), np.uint8))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_transform_checks_image_size(name, images):
    extractor = small(name).fit(images)
    with pytest.raises(ImageError, match=r"images are 32x32 but the extractor was fitted on 28x28"):
        extractor.transform(np.zeros((2, 32, 32), np.uint8))

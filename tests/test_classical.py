"""models.classical: registry, pipeline factory, validation, search and param_count."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import PredefinedSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from models import classifiers
from models.classical import make_classifier, make_search, param_count, predefined_split
from models.errors import ParameterError

N, DIM, N_CLASSES = 60, 4, 3
SCALER = 2 * DIM  # mean_ + scale_


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(
        n_samples=N, n_features=DIM, n_informative=3, n_redundant=0,
        n_classes=N_CLASSES, n_clusters_per_class=1, random_state=0,
    )


def fit(name: str, data, **kwargs) -> Pipeline:
    X, y = data
    return make_classifier(name, **kwargs).fit(X, y)


@pytest.mark.parametrize("name", classifiers.names())
def test_every_registered_classifier_builds_fits_and_is_sized(name, data):
    model = fit(name, data)
    assert [step for step, _ in model.steps] == ["scale", "clf"]
    assert type(model.named_steps["clf"]) is classifiers.get(name).load()
    # three well-separated generated classes: every classifier is far above chance (1/3) on its training data
    assert np.mean(model.predict(data[0]) == data[1]) >= 0.8
    assert param_count(model) > SCALER


def test_import_does_not_load_sklearn():
    code = ("import sys, models.classical, models.classifiers as c; c.get('rbf_svm'); "
            "assert 'sklearn' not in sys.modules, 'sklearn imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_entries_name_their_class_and_paper():
    svc = classifiers.get("rbf_svm")
    assert svc.load().__name__ == "SVC" and svc.fixed == {"kernel": "rbf"}
    assert "Cortes" in svc.citation and svc.summary


def test_stochastic_classifiers_are_the_ones_whose_fit_depends_on_the_seed():
    assert {n for n in classifiers.names() if classifiers.get(n).stochastic} == {"linear_svm", "random_forest"}
    narrow = make_classification(n_samples=60, n_features=4, n_informative=3, n_redundant=0, n_classes=3,
                                 n_clusters_per_class=1, random_state=0)
    # LinearSVC is seeded only in its dual solver, which dual="auto" picks for more features than samples
    wide = make_classification(n_samples=60, n_features=100, n_informative=3, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    for name in classifiers.names():
        X, y = wide if name == "linear_svm" else narrow
        a, b = (make_classifier(name, random_state=seed).fit(X, y) for seed in (0, 1))
        score = "predict_proba" if hasattr(a, "predict_proba") else "decision_function"
        differ = not np.array_equal(getattr(a, score)(X), getattr(b, score)(X))
        assert differ == classifiers.get(name).stochastic, name


def test_unknown_classifier_in_the_registry():
    with pytest.raises(ParameterError, match=r"^unknown classifier 'svm'; allowed: knn, linear_svm, logreg, "):
        classifiers.get("svm")


def test_hyperparameters_and_random_state_reach_the_estimator():
    clf = make_classifier("rbf_svm", random_state=7, C=2.0, gamma=0.1).named_steps["clf"]
    assert (clf.kernel, clf.C, clf.gamma, clf.random_state) == ("rbf", 2.0, 0.1, 7)
    forest = make_classifier("random_forest", n_estimators=5, max_depth=3).named_steps["clf"]
    assert (forest.n_estimators, forest.max_depth, forest.random_state) == (5, 3, 0)
    assert make_classifier("knn", n_neighbors=3, weights="distance").named_steps["clf"].n_neighbors == 3


def test_unknown_classifier_lists_allowed_names():
    expected = r"^unknown classifier 'svm'; allowed: knn, linear_svm, logreg, random_forest, rbf_svm$"
    with pytest.raises(ParameterError, match=expected):
        make_classifier("svm")


def test_unknown_hyperparameter_lists_allowed_ones():
    with pytest.raises(ParameterError) as err:
        make_classifier("rbf_svm", gama=0.1)
    message = str(err.value)
    assert message.startswith("SVC: unknown hyperparameter 'gama'; allowed: C, break_ties, cache_size")
    assert "gamma" in message and "\n" not in message


def test_scale_none_passes_the_features_through_and_counts_no_scaler():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4)) * [1.0, 1.0, 100.0, 0.01]
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    plain = make_classifier("knn", scale="none", n_neighbors=3).fit(X, y)
    standard = make_classifier("knn", n_neighbors=3).fit(X, y)
    assert plain.named_steps["scale"] == "passthrough"
    np.testing.assert_array_equal(plain.named_steps["clf"]._fit_X, X)
    assert param_count(standard) - param_count(plain) == 2 * X.shape[1]  # the scaler's mean_ and scale_
    # unscaled, the 100x dimension dominates the distances; standardised, it does not
    assert (plain.predict(X) != standard.predict(X)).any()


def test_unknown_scale_is_named():
    with pytest.raises(ParameterError, match=r"^scale must be one of standard, none; got 'minmax'$"):
        make_classifier("knn", scale="minmax")


def test_fixed_kernel_is_not_a_hyperparameter():
    with pytest.raises(ParameterError, match="unknown hyperparameter 'kernel'"):
        make_classifier("rbf_svm", kernel="linear")


@pytest.mark.parametrize(
    ("name", "params", "bad", "allowed"),
    [
        ("rbf_svm", {"C": -1}, "Got -1", "range (0.0, inf]"),
        ("knn", {"weights": "nearest"}, "Got 'nearest'", "'distance'"),
        ("logreg", {"max_iter": -1}, "Got -1", "range [0, inf)"),
    ],
)
def test_invalid_value_is_a_parameter_error(name, params, bad, allowed):
    with pytest.raises(ParameterError) as err:
        make_classifier(name, **params)
    message = str(err.value)
    assert message.startswith(f"The '{next(iter(params))}' parameter")  # the stage prefixes the params section
    assert bad in message and allowed in message and "\n" not in message


def test_pca_step(data):
    model = fit("logreg", data, pca=2)
    assert [step for step, _ in model.steps] == ["scale", "pca", "clf"]
    # scaler 8 + PCA components 2x4 + mean 4 + logreg 3x2 coef + 3 intercepts
    assert param_count(model) == SCALER + 2 * DIM + DIM + N_CLASSES * 2 + N_CLASSES
    assert fit("logreg", data, pca=0.9).named_steps["pca"].n_components == 0.9  # a variance fraction, as given


@pytest.mark.parametrize("pca", [0, -1, 1.0, 1.5, True, "2"])
def test_bad_pca_is_a_parameter_error(pca):
    with pytest.raises(ParameterError, match="pca must be"):
        make_classifier("logreg", pca=pca)


@pytest.mark.parametrize("name", ["logreg", "linear_svm"])
def test_param_count_linear(name, data):
    assert param_count(fit(name, data)) == N_CLASSES * DIM + N_CLASSES + SCALER  # 23


def test_param_count_svc(data):
    model = fit("rbf_svm", data)
    n_sv = int(model.named_steps["clf"].n_support_.sum())
    pairs = N_CLASSES * (N_CLASSES - 1) // 2  # one-vs-one intercepts
    assert param_count(model) == n_sv * DIM + (N_CLASSES - 1) * n_sv + pairs + SCALER


def test_param_count_random_forest(data):
    model = fit("random_forest", data, n_estimators=2, max_depth=1)
    assert [tree.tree_.node_count for tree in model.named_steps["clf"].estimators_] == [3, 3]
    per_tree = 1 * 2 + 2 * N_CLASSES  # root: feature + threshold; two leaves: 3 class values each
    assert param_count(model) == 2 * per_tree + SCALER  # 24


def test_param_count_knn(data):
    assert param_count(fit("knn", data, n_neighbors=3)) == N * DIM + SCALER  # 248


def test_param_count_unknown_estimator_is_a_type_error(data):
    model = Pipeline([("scale", StandardScaler()), ("clf", DecisionTreeClassifier())]).fit(*data)
    with pytest.raises(TypeError, match="DecisionTreeClassifier"):
        param_count(model)


def test_predefined_split_uses_train_then_validation_rows():
    cv = predefined_split(4, 2)
    assert isinstance(cv, PredefinedSplit)
    assert cv.test_fold.tolist() == [-1, -1, -1, -1, 0, 0]
    [(fit_idx, score_idx)] = list(cv.split())
    assert fit_idx.tolist() == [0, 1, 2, 3] and score_idx.tolist() == [4, 5]
    with pytest.raises(ParameterError):
        predefined_split(5, 0)


def test_search_fits_on_train_plus_validation_only(data):
    X, y = data
    n_train, n_val = 40, 20  # the whole train+val matrix; no test rows are passed
    search = make_search(make_classifier("logreg"), {"C": [0.1, 1.0]}, cv=predefined_split(n_train, n_val))
    search.fit(X[: n_train + n_val], y[: n_train + n_val])
    assert search.cv.test_fold.tolist() == [-1] * n_train + [0] * n_val
    assert search.n_splits_ == 1
    assert set(search.best_params_) == {"clf__C"}
    assert search.best_estimator_.named_steps["clf"].C in (0.1, 1.0)


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        ({"gama": [1]}, "unknown hyperparameter 'gama'; allowed: C"),
        ({"C": []}, "non-empty list"),
        ({}, "grid is empty"),
    ],
)
def test_bad_search_grid_is_a_parameter_error(grid, match):
    with pytest.raises(ParameterError, match=match):
        make_search(make_classifier("rbf_svm"), grid)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("shape", ["ovr", "ovo"])
def test_svc_one_pass_equals_predict_and_decision_function(n_classes, shape):
    from sklearn.svm import SVC, NuSVC

    from models.classical import svc_one_pass

    rng = np.random.default_rng(n_classes)
    x = rng.normal(size=(300, 4))
    y = rng.integers(0, n_classes, 300) * 3  # overlapping classes, labels not 0..k-1
    for clf in (SVC(C=1.0, decision_function_shape=shape).fit(x, y), NuSVC(nu=0.3, decision_function_shape=shape).fit(x, y)):
        labels, scores = svc_one_pass(clf, x)
        np.testing.assert_array_equal(labels, clf.predict(x))
        np.testing.assert_allclose(scores, clf.decision_function(x), rtol=1e-12, atol=1e-12)
        assert clf.decision_function_shape == shape  # restored
        if n_classes > 2 and shape == "ovr":  # the vote and the ovr argmax can differ; the labels are predict's
            assert scores.shape == (300, n_classes)


def test_svc_one_pass_declines_where_predict_is_not_the_vote():
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from models.classical import svc_one_pass

    x = np.random.default_rng(0).normal(size=(60, 3))
    y = np.arange(60) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.9 deprecates probability=True
        platt = SVC(probability=True, random_state=0).fit(x, y)
    assert svc_one_pass(platt, x) is None
    assert svc_one_pass(SVC(break_ties=True).fit(x, y), x) is None
    assert svc_one_pass(LogisticRegression().fit(x, y), x) is None

"""The train_classical stage through its real code path: features -> model -> metrics + MLflow run."""
from __future__ import annotations

import copy
import csv
import json

import mlflow
import numpy as np
import pytest
import skops.io as sio
import yaml

from helpers import REPO_ROOT, SQUARE_CLASSES, square_split
from pipeline import features, results, train_classical
from pipeline.config import parse_config
from pipeline.errors import ConfigError, DataError
from pipeline.io import save_split

N_CLASSES = SQUARE_CLASSES


def make_split(seed: int = 0):
    """Three classes of 16x16 images told apart by where a bright square sits."""
    return square_split({"train": 30, "val": 9, "test": 12}, noise=40, square=220, seed=seed)


def make_config(**classical) -> object:
    raw = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    raw["features"]["names"] = ["raw", "hog"]
    raw["features"]["n_jobs"] = 1
    raw["classical"].update(classical)
    return parse_config(raw)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    save_split(tmp_path / "data/prepared/split.npz", make_split())
    cfg = make_config()
    features.run(cfg, "hog")
    return tmp_path


def test_stage_writes_metrics_plots_model_and_mlflow_run(workdir):
    cfg = make_config()
    result = train_classical.run(cfg, "hog", "logreg")
    scores = json.loads((workdir / "metrics/classical/hog-logreg.json").read_text())
    info = json.loads((workdir / "metrics/classical/hog-logreg.run.json").read_text())
    assert scores["test_accuracy"] == pytest.approx(1.0)  # the toy classes are trivially separable
    assert scores["param_count"] == result["param_count"] > 0
    assert info["mlflow_run_id"] == result["mlflow_run_id"] and info["fit_seconds"] >= 0
    with open(workdir / "plots/confusion/hog-logreg.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and set(rows[0]) == {"actual", "predicted"}
    model = sio.load(workdir / "artifacts/classical/hog-logreg.skops",
                     trusted=sio.get_untrusted_types(file=workdir / "artifacts/classical/hog-logreg.skops"))
    data = features.load_features("hog")
    assert np.array_equal(model.predict(data["x_test"]), data["y_test"])

    run = mlflow.get_run(info["mlflow_run_id"])
    assert run.data.tags["approach"] == "classical" and run.data.tags["feature"] == "hog"
    assert run.data.tags["classifier"] == "logreg" and run.data.tags["split_sha256"] == make_split().sha256
    for key in ("test_accuracy", "macro_f1", "param_count", "fit_seconds", "predict_images_per_s"):
        assert key in run.data.metrics
    assert run.data.metrics["param_count"] == scores["param_count"]
    for key in ("test_accuracy_ci_low", "test_accuracy_ci_high", "macro_f1_ci_low", "macro_f1_ci_high", "n_test"):
        assert run.data.metrics[key] == scores[key], key
    logged = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert np.array_equal(logged.predict(data["x_test"]), data["y_test"])


def assert_intervals_hold_the_estimates(scores: dict, n_test: int) -> None:
    assert scores["n_test"] == n_test
    assert scores["test_accuracy_ci_low"] < scores["test_accuracy"] <= scores["test_accuracy_ci_high"]
    assert scores["macro_f1_ci_low"] <= scores["macro_f1"] <= scores["macro_f1_ci_high"]
    assert scores["test_accuracy_ci_low"] < scores["test_accuracy_ci_high"]  # Wilson never collapses


def test_stage_writes_per_image_probabilities_and_intervals(workdir):
    split = make_split()
    train_classical.run(make_config(), "hog", "logreg")
    scores = json.loads((workdir / "metrics/classical/hog-logreg.json").read_text())
    assert scores["score_kind"] == "probability"
    assert_intervals_hold_the_estimates(scores, 12)
    for part in ("val", "test"):
        found = results.read_predictions("hog-logreg", part)
        assert len(found) == len(split.y[part]) and found.index.tolist() == list(range(len(split.y[part])))
        assert found.y_true.tolist() == split.y[part].tolist() and found.score_kind == "probability"
        assert found.scores.shape == (len(split.y[part]), N_CLASSES)
        assert np.allclose(found.scores.sum(axis=1), 1.0, atol=1e-6)
        assert np.array_equal(found.scores.argmax(axis=1), found.y_pred)
    test = results.read_predictions("hog-logreg", "test")
    assert scores["test_accuracy"] == pytest.approx(np.mean(test.correct), abs=1e-6)
    model = sio.load(workdir / "artifacts/classical/hog-logreg.skops",
                     trusted=sio.get_untrusted_types(file=workdir / "artifacts/classical/hog-logreg.skops"))
    x_test = features.load_features("hog")["x_test"]
    assert np.allclose(test.scores, model.predict_proba(x_test), atol=1e-7)


@pytest.mark.parametrize("classifier", ["rbf_svm", "linear_svm"])
def test_svms_write_decision_scores(workdir, classifier):
    split = make_split()
    train_classical.run(make_config(), "hog", classifier)
    scores = json.loads((workdir / f"metrics/classical/hog-{classifier}.json").read_text())
    assert scores["score_kind"] == "decision_function"
    assert_intervals_hold_the_estimates(scores, 12)
    model = sio.load(workdir / f"artifacts/classical/hog-{classifier}.skops",
                     trusted=sio.get_untrusted_types(file=workdir / f"artifacts/classical/hog-{classifier}.skops"))
    data = features.load_features("hog")
    for part in ("val", "test"):
        found = results.read_predictions(f"hog-{classifier}", part)
        assert len(found) == len(split.y[part]) and found.score_kind == "decision_function"
        assert np.array_equal(found.y_pred, model.predict(data[f"x_{part}"]))
        assert np.allclose(found.scores, model.decision_function(data[f"x_{part}"]), rtol=1e-6, atol=1e-6)
        assert np.array_equal(found.scores.argmax(axis=1), found.y_pred)


def test_class_scores_of_binary_and_partial_classifiers():
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    y = (x[:, 0] > 0).astype(np.int64)
    svm = LinearSVC().fit(x, y)
    scores, kind = train_classical.class_scores(svm, x, 2)
    d = svm.decision_function(x)
    assert kind == "decision_function" and scores.tolist() == np.stack([-d, d], axis=1).tolist()
    assert np.array_equal(scores.argmax(axis=1), svm.predict(x))
    # trained on classes 0 and 2 of 3: class 1 gets probability 0 / decision score -inf
    y_gap = np.where(y == 1, 2, 0)
    proba, kind = train_classical.class_scores(LogisticRegression().fit(x, y_gap), x, 3)
    assert kind == "probability" and proba.shape == (40, 3) and not proba[:, 1].any()
    assert np.allclose(proba.sum(axis=1), 1.0)
    decision, _ = train_classical.class_scores(LinearSVC().fit(x, y_gap), x, 3)
    assert np.isneginf(decision[:, 1]).all() and np.array_equal(decision[:, 2], -decision[:, 0])


def test_same_seed_gives_byte_identical_metrics(workdir):
    cfg = make_config()
    paths = [workdir / "metrics/classical/hog-random_forest.json",
             workdir / "predictions/hog-random_forest/val.csv", workdir / "predictions/hog-random_forest/test.csv"]
    train_classical.run(cfg, "hog", "random_forest")
    first = [path.read_bytes() for path in paths]
    train_classical.run(cfg, "hog", "random_forest")
    assert [path.read_bytes() for path in paths] == first


def test_grid_search_logs_best_params(workdir):
    cfg = make_config(search=True)
    result = train_classical.run(cfg, "hog", "knn")
    run = mlflow.get_run(result["mlflow_run_id"])
    assert "best.n_neighbors" in run.data.params


def test_bad_names_and_missing_features(workdir):
    cfg = make_config()
    with pytest.raises(ConfigError) as bad_classifier:
        train_classical.run(cfg, "hog", "svm")
    assert str(bad_classifier.value) == (
        "--classifier = 'svm': allowed: knn, linear_svm, logreg, random_forest, rbf_svm")
    with pytest.raises(ConfigError) as bad_feature:
        train_classical.run(cfg, "surf", "knn")
    assert str(bad_feature.value) == "--feature = 'surf': allowed: hog, raw, sift, sobel"
    with pytest.raises(DataError, match=r"data/features/raw.npz: not found"):
        train_classical.run(cfg, "raw", "knn")
    assert not (workdir / "metrics/classical").exists()


def test_only_the_trained_classifier_is_validated(workdir):
    cfg = make_config(rbf_svm={"C": 10.0, "gamma": "scale", "bogus": 1})
    assert train_classical.run(cfg, "hog", "logreg")["test_accuracy"] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"^params\.yaml: .*rbf_svm.*unknown hyperparameter 'bogus'"):
        train_classical.run(cfg, "hog", "rbf_svm")
    assert not (workdir / "metrics/classical/hog-rbf_svm.json").exists()

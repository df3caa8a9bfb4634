"""The train_classical stage through its real code path: features -> model -> metrics + MLflow run."""
from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest
import yaml

from helpers import REPO_ROOT, SQUARE_CLASSES, square_split
from features import extractor_names
from features.errors import ParameterError as FeatureParameterError
from models.classical import load_pipeline
from models.errors import ParameterError as ModelParameterError
from models.predicting import class_scores
from pipeline import features, model_runs, read_results, train_classical
from pipeline.tracking import experiment_id_of
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
def workdir(mlflow_tmp):
    save_split(mlflow_tmp / "data/prepared/split.npz", make_split())
    cfg = make_config()
    features.run(cfg, "hog")
    return mlflow_tmp


def test_stage_writes_metrics_plots_and_an_image_in_model(workdir):
    cfg = make_config()
    result = train_classical.run(cfg, "hog", "logreg")
    scores = json.loads((workdir / "metrics/classical/hog-logreg.json").read_text())
    info = json.loads((workdir / "metrics/classical/hog-logreg.run.json").read_text())
    assert scores["test_accuracy"] == pytest.approx(1.0)  # the toy classes are trivially separable
    assert scores["param_count"] == result["param_count"] > 0
    assert info["fit_seconds"] >= 0 and info["params"]["C"] == "1.0" and "mlflow_run_id" not in info
    with open(workdir / "plots/confusion/hog-logreg.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and set(rows[0]) == {"actual", "predicted"}
    assert not (workdir / "plots/confusion/hog-logreg.png").exists()  # drawn by compare, for MLflow
    # one pipeline from images to labels: the features stage's fitted extractor + the classifier
    model = load_pipeline(workdir / "artifacts/classical/hog-logreg.skops")
    assert [name for name, _ in model.steps] == ["features", "scale", "clf"]
    split = make_split()
    test = read_results.read_predictions("hog-logreg", "test")
    assert np.array_equal(model.predict(split.x["test"]), test.y_pred)
    assert np.array_equal(model.predict(split.x["test"][..., 0]), test.y_pred)  # (n, H, W) too
    assert np.allclose(model.predict_proba(split.x["test"]), test.scores, atol=1e-7)


def test_saved_pipelines_predict_what_the_stage_predicted(workdir):
    """Every classifier, and PCA in between: the image-in model reproduces the stage's test and
    validation labels exactly (nothing refitted when it was composed)."""
    split = make_split()
    cfg = make_config(pca=5)
    for classifier in ("rbf_svm", "linear_svm", "random_forest", "knn"):
        train_classical.run(cfg, "hog", classifier)
        model = load_pipeline(workdir / f"artifacts/classical/hog-{classifier}.skops")
        assert [name for name, _ in model.steps] == ["features", "scale", "pca", "clf"]
        for part in ("val", "test"):
            found = read_results.read_predictions(f"hog-{classifier}", part)
            assert np.array_equal(model.predict(split.x[part]), found.y_pred), (classifier, part)


def test_unscaled_pipeline_is_saved_loaded_and_recorded(workdir):
    split = make_split()
    standard = train_classical.run(make_config(pca=5), "hog", "knn")
    unscaled = train_classical.run(make_config(pca=5, scale="none"), "hog", "knn")
    info = json.loads((workdir / "metrics/classical/hog-knn.run.json").read_text())
    assert info["params"]["scale"] == "none"
    model = load_pipeline(workdir / "artifacts/classical/hog-knn.skops")
    assert model.named_steps["scale"] == "passthrough"
    assert standard["param_count"] - unscaled["param_count"] == 2 * model.named_steps["pca"].n_features_in_
    for part in ("val", "test"):
        assert np.array_equal(model.predict(split.x[part]), read_results.read_predictions("hog-knn", part).y_pred)


def test_stage_process_imports_no_mlflow_or_matplotlib(workdir):
    code = ("import sys; from pipeline import train_classical; from pipeline.config import load_config; "
            "train_classical.run(load_config('params.yaml'), 'hog', 'logreg'); "
            "print(sorted(m for m in ('mlflow', 'matplotlib') if m in sys.modules))")
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["features"]["names"] = ["raw", "hog"]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    out = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (workdir / "metrics/classical/hog-logreg.json").is_file()


def test_compare_logs_the_stage_files_to_mlflow_once(workdir):
    cfg = make_config()
    result = train_classical.run(cfg, "hog", "logreg")
    scores = json.loads((workdir / "metrics/classical/hog-logreg.json").read_text())
    experiment_id = experiment_id_of("cvd-train-classical-test")
    rows = [{"approach": "classical", "model": "hog-logreg"}]
    run_ids, new = model_runs.log_classical_runs(experiment_id, rows, ["top", "middle", "bottom"])
    assert new == 1
    run = mlflow.get_run(run_ids["hog-logreg"])
    assert run.info.run_name == "classical-hog-logreg" and run.info.status == "FINISHED"
    assert run.data.tags["approach"] == "classical" and run.data.tags["feature"] == "hog"
    assert run.data.tags["classifier"] == "logreg" and run.data.tags["split_sha256"] == make_split().sha256
    assert run.data.tags["stage"] == "train_classical" and run.data.params["C"] == "1.0"
    for key in ("test_accuracy", "macro_f1", "param_count", "fit_seconds", "predict_images_per_s"):
        assert key in run.data.metrics
    assert run.data.metrics["param_count"] == scores["param_count"] == result["param_count"]
    for key in ("test_accuracy_ci_low", "test_accuracy_ci_high", "macro_f1_ci_low", "macro_f1_ci_high", "n_test"):
        assert run.data.metrics[key] == scores[key], key
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots/confusion")}
    assert artifacts == {"plots/confusion/hog-logreg.png", "plots/confusion/hog-logreg.csv"}
    # the logged model takes images, like the file
    images = make_split().x["test"]
    logged = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert logged.metadata.get_input_schema().inputs[0].shape == (-1, 16, 16, 1)
    assert np.array_equal(logged.predict(images), make_split().y["test"])
    # unchanged files: the same run, nothing logged; a retrained model: a new run
    assert model_runs.log_classical_runs(experiment_id, rows, ["top", "middle", "bottom"]) == (run_ids, 0)
    train_classical.run(make_config(logreg={"C": 0.5, "max_iter": 2000}), "hog", "logreg")
    again, new = model_runs.log_classical_runs(experiment_id, rows, ["top", "middle", "bottom"])
    assert new == 1 and again["hog-logreg"] != run_ids["hog-logreg"]
    assert mlflow.get_run(again["hog-logreg"]).data.params["C"] == "0.5"


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
        found = read_results.read_predictions("hog-logreg", part)
        assert len(found) == len(split.y[part]) and found.index.tolist() == list(range(len(split.y[part])))
        assert found.y_true.tolist() == split.y[part].tolist() and found.score_kind == "probability"
        assert found.scores.shape == (len(split.y[part]), N_CLASSES)
        assert np.allclose(found.scores.sum(axis=1), 1.0, atol=1e-6)
        assert np.array_equal(found.scores.argmax(axis=1), found.y_pred)
    test = read_results.read_predictions("hog-logreg", "test")
    assert scores["test_accuracy"] == pytest.approx(np.mean(test.correct), abs=1e-6)
    model = load_pipeline(workdir / "artifacts/classical/hog-logreg.skops")
    assert np.allclose(test.scores, model.predict_proba(split.x["test"]), atol=1e-7)


@pytest.mark.parametrize("classifier", ["rbf_svm", "linear_svm"])
def test_svms_write_decision_scores(workdir, classifier):
    split = make_split()
    train_classical.run(make_config(), "hog", classifier)
    scores = json.loads((workdir / f"metrics/classical/hog-{classifier}.json").read_text())
    assert scores["score_kind"] == "decision_function"
    assert_intervals_hold_the_estimates(scores, 12)
    model = load_pipeline(workdir / f"artifacts/classical/hog-{classifier}.skops")
    for part in ("val", "test"):
        found = read_results.read_predictions(f"hog-{classifier}", part)
        assert len(found) == len(split.y[part]) and found.score_kind == "decision_function"
        assert np.array_equal(found.y_pred, model.predict(split.x[part]))
        assert np.allclose(found.scores, model.decision_function(split.x[part]), rtol=1e-6, atol=1e-6)
        assert np.array_equal(found.scores.argmax(axis=1), found.y_pred)


def test_class_scores_of_binary_and_partial_classifiers():
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    y = (x[:, 0] > 0).astype(np.int64)
    svm = LinearSVC().fit(x, y)
    scores, kind = class_scores(svm, x, 2)
    d = svm.decision_function(x)
    assert kind == "decision_function" and scores.tolist() == np.stack([-d, d], axis=1).tolist()
    assert np.array_equal(scores.argmax(axis=1), svm.predict(x))
    # trained on classes 0 and 2 of 3: class 1 gets probability 0 / decision score -inf
    y_gap = np.where(y == 1, 2, 0)
    proba, kind = class_scores(LogisticRegression().fit(x, y_gap), x, 3)
    assert kind == "probability" and proba.shape == (40, 3) and not proba[:, 1].any()
    assert np.allclose(proba.sum(axis=1), 1.0)
    decision, _ = class_scores(LinearSVC().fit(x, y_gap), x, 3)
    assert np.isneginf(decision[:, 1]).all() and np.array_equal(decision[:, 2], -decision[:, 0])


def test_same_seed_gives_byte_identical_metrics(workdir):
    cfg = make_config()
    paths = [workdir / "metrics/classical/hog-random_forest.json",
             workdir / "predictions/hog-random_forest/val.csv", workdir / "predictions/hog-random_forest/test.csv"]
    train_classical.run(cfg, "hog", "random_forest")
    first = [path.read_bytes() for path in paths]
    train_classical.run(cfg, "hog", "random_forest")
    assert [path.read_bytes() for path in paths] == first


def test_grid_search_records_best_params(workdir):
    cfg = make_config(search=True)
    train_classical.run(cfg, "hog", "knn")
    info = json.loads((workdir / "metrics/classical/hog-knn.run.json").read_text())
    assert info["params"]["best.n_neighbors"] in {"3", "5", "7"}  # params.yaml classical.grid.knn
    run_ids, _ = model_runs.log_classical_runs(experiment_id_of("cvd-search-test"),
                                               [{"approach": "classical", "model": "hog-knn"}], ["a", "b", "c"])
    assert mlflow.get_run(run_ids["hog-knn"]).data.params["best.n_neighbors"] == info["params"]["best.n_neighbors"]


def test_bad_names_and_missing_features(workdir):
    cfg = make_config()
    with pytest.raises(ModelParameterError) as bad_classifier:  # the registries' own checks
        train_classical.run(cfg, "hog", "svm")
    assert str(bad_classifier.value) == (
        "unknown classifier 'svm'; allowed: knn, linear_svm, logreg, random_forest, rbf_svm")
    with pytest.raises(FeatureParameterError) as bad_feature:
        train_classical.run(cfg, "surf", "knn")
    assert str(bad_feature.value) == f"unknown feature extractor 'surf'; allowed: {', '.join(extractor_names())}"
    with pytest.raises(DataError, match=r"data/features/raw.npz: not found"):
        train_classical.run(cfg, "raw", "knn")
    assert not (workdir / "metrics/classical").exists()


def test_only_the_trained_classifier_is_validated(workdir):
    cfg = make_config(rbf_svm={"C": 10.0, "gamma": "scale", "bogus": 1})
    assert train_classical.run(cfg, "hog", "logreg")["test_accuracy"] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"^params\.yaml: .*rbf_svm.*unknown hyperparameter 'bogus'"):
        train_classical.run(cfg, "hog", "rbf_svm")
    assert not (workdir / "metrics/classical/hog-rbf_svm.json").exists()


class Foreign:
    """A type no model file of this project holds."""

    def __init__(self):
        self.payload = [1, 2, 3]


def test_model_files_this_project_did_not_write_are_refused(tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import StandardScaler

    from models.classical import dumps
    from models.errors import InputError

    foreign = tmp_path / "foreign.skops"
    foreign.write_bytes(sio.dumps(Foreign()))
    with pytest.raises(InputError, match=r"foreign\.skops: holds types this project never writes: .*Foreign; not loaded"):
        load_pipeline(foreign)
    garbage = tmp_path / "garbage.skops"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match=r"garbage\.skops: not a skops model file"):
        load_pipeline(garbage)
    scaler = tmp_path / "scaler.skops"
    scaler.write_bytes(dumps(StandardScaler().fit(np.eye(3))))
    with pytest.raises(InputError, match=r"scaler\.skops: not an image-in pipeline"):
        load_pipeline(scaler)
    with pytest.raises(InputError, match=r"missing\.skops: model file not found"):
        load_pipeline(tmp_path / "missing.skops")


def test_a_solver_stopped_at_its_iteration_limit_is_one_line_naming_the_setting(capsys):
    """scikit-learn's ConvergenceWarning (a dozen lines with links) becomes one line naming the
    key that bounds the solver; a fit that converges prints nothing."""
    from pipeline.classical_training import fit_model

    rng = np.random.default_rng(0)
    data = {"x_train": rng.normal(size=(60, 40)), "y_train": np.arange(60) % 3}
    cfg = make_config(logreg={"C": 100.0, "max_iter": 1})
    fit_model(cfg, "logreg", data)
    err = capsys.readouterr().err
    assert err.splitlines() == ["logreg on 60 training images: the solver stopped at its iteration limit before "
                                "converging (classical.logreg.max_iter = 1); the model is used as fitted"]
    fit_model(make_config(), "logreg", data)
    assert capsys.readouterr().err == ""

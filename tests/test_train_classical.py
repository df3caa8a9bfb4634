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

from helpers import REPO_ROOT
from pipeline import features, train_classical
from pipeline.config import parse_config
from pipeline.errors import ConfigError, DataError
from pipeline.io import Split, save_split, split_digest

N_CLASSES, SIZE = 3, 16


def make_split(seed: int = 0) -> Split:
    """Three classes of 16x16 images told apart by where a bright square sits."""
    rng = np.random.default_rng(seed)
    x, y = {}, {}
    for part, n in (("train", 30), ("val", 9), ("test", 12)):
        labels = np.arange(n) % N_CLASSES
        images = rng.integers(0, 40, (n, SIZE, SIZE, 1), dtype=np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 4 * label: 6 + 4 * label, 4:10] = 220
        x[part], y[part] = images, labels.astype(np.int64)
    names = ["top", "middle", "bottom"]
    return Split(x, y, names, "toy", split_digest(x, y, names))


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
    logged = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert np.array_equal(logged.predict(data["x_test"]), data["y_test"])


def test_same_seed_gives_byte_identical_metrics(workdir):
    cfg = make_config()
    path = workdir / "metrics/classical/hog-random_forest.json"
    train_classical.run(cfg, "hog", "random_forest")
    first = path.read_bytes()
    train_classical.run(cfg, "hog", "random_forest")
    assert path.read_bytes() == first


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

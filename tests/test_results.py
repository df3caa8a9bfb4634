"""pipeline.results: the per-model files written by record_model and read back by compare."""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import results
from pipeline.errors import DataError

CLASSES = ["cat", "dog", "emu"]
SPLIT = "e" * 64


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return tmp_path


def test_record_model_writes_the_files_and_logs_to_the_given_run(workdir):
    client = MlflowClient()
    experiment_id = client.create_experiment("results-test", artifact_location=(workdir / "art").as_uri())
    target = client.create_run(experiment_id)
    model = workdir / "model.bin"
    model.write_bytes(b"x" * 1234)
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 2, 2, 2])
    with mlflow.start_run(experiment_id=experiment_id) as other:  # a different run is active
        result = results.record_model(
            run=target, approach="classical", model_id="hog-knn", y_true=y_true, y_pred=y_pred,
            class_names=CLASSES, param_count=42, model_path=model,
            run_info={"feature": "hog", "classifier": "knn", "dataset": "toy", "split_sha256": SPLIT,
                      "fit_seconds": 0.5, "predict_images_per_s": 100.0},
            extra_scores={"val_accuracy": 0.75})
    assert result["mlflow_run_id"] == target.info.run_id
    logged = client.get_run(target.info.run_id)
    assert logged.data.metrics["test_accuracy"] == pytest.approx(5 / 6)
    assert logged.data.metrics["param_count"] == 42 and logged.data.metrics["fit_seconds"] == 0.5
    artifacts = {a.path for folder in ("plots/confusion", "plots/per_class")
                 for a in client.list_artifacts(target.info.run_id, folder)}
    assert artifacts == {"plots/confusion/hog-knn.png", "plots/confusion/hog-knn.csv",
                         "plots/per_class/hog-knn.csv"}
    assert client.get_run(other.info.run_id).data.metrics == {}

    scores = json.loads(Path("metrics/classical/hog-knn.json").read_text())
    # F1 per class: 1, 2/3 (one dog called an emu), 4/5 (emus: precision 2/3)
    assert scores == {"test_accuracy": pytest.approx(5 / 6, abs=1e-6),
                      "macro_f1": pytest.approx(37 / 45, abs=1e-6),
                      "param_count": 42, "model_bytes": 1234, "val_accuracy": 0.75}
    # round trip: what compare reads is what was recorded
    (row,) = results.read_rows({"classical": ["hog-knn"], "deep": []})
    assert (row["model"], row["feature"], row["classifier"], row["arch"]) == ("hog-knn", "hog", "knn", "")
    assert row["test_accuracy"] == scores["test_accuracy"] and row["param_count"] == 42
    assert row["model_bytes"] == 1234 and row["split_sha256"] == SPLIT
    assert row["mlflow_run_id"] == target.info.run_id
    actual, predicted = results.read_confusion("classical", "hog-knn")
    assert actual == [CLASSES[i] for i in y_true] and predicted == [CLASSES[i] for i in y_pred]


def _write_model(approach: str, model_id: str, scores: dict | None = None) -> None:
    results.scores_path(approach, model_id).parent.mkdir(parents=True, exist_ok=True)
    results.scores_path(approach, model_id).write_text(json.dumps(
        scores or {"test_accuracy": 0.9, "macro_f1": 0.89, "param_count": 10}))
    results.run_info_path(approach, model_id).write_text(json.dumps({"split_sha256": SPLIT, "dataset": "toy"}))


def test_missing_files_are_all_named_with_their_stage(workdir):
    _write_model("classical", "hog-knn")
    Path("metrics/classical/hog-knn.run.json").unlink()
    ids = {"classical": ["hog-knn", "raw-knn"], "deep": ["lenet5"]}
    with pytest.raises(DataError) as error:
        results.read_rows(ids)
    message = str(error.value)
    assert "\n" not in message and message.startswith("missing metrics of 3 configured model(s): ")
    assert "metrics/classical/hog-knn.run.json (run `dvc repro train_classical@hog-knn`)" in message
    assert ("metrics/classical/raw-knn.json and metrics/classical/raw-knn.run.json "
            "(run `dvc repro train_classical@raw-knn`)") in message
    assert "metrics/cnn/lenet5.json and metrics/cnn/lenet5.run.json (run `dvc repro train_cnn@lenet5`)" in message
    many = {"classical": [f"f{i}-knn" for i in range(6)], "deep": []}
    with pytest.raises(DataError, match=r"6 configured model\(s\): .*; and 2 more \(or run `dvc repro` for all\)$"):
        results.read_rows(many)


def test_bad_values_name_the_file_and_the_fix(workdir):
    _write_model("deep", "lenet5", {"test_accuracy": "high", "macro_f1": True, "param_count": 5})
    with pytest.raises(DataError, match=r"^metrics/cnn/lenet5\.json / lenet5\.run\.json: missing or non-numeric "
                                        r"test_accuracy, macro_f1; rerun `dvc repro train_cnn@lenet5`$"):
        results.read_rows({"deep": ["lenet5"]})
    with pytest.raises(DataError, match="no split_sha256 recorded"):
        results.model_row("deep", "lenet5", {"test_accuracy": 1, "macro_f1": 1, "param_count": 1},
                          where="here", fix="fix it")


def test_confusion_and_history_readers_fail_in_one_line(workdir):
    with pytest.raises(DataError,
                       match=r"^plots/confusion/lenet5\.csv: not found \(run `dvc repro train_cnn@lenet5`\)$"):
        results.read_confusion("deep", "lenet5")
    Path("plots/confusion").mkdir(parents=True)
    Path("plots/confusion/hog-knn.csv").write_text("actual,guess\ncat,dog\n")
    with pytest.raises(DataError, match=r"hog-knn\.csv: missing column\(s\) predicted .*train_classical@hog-knn"):
        results.read_confusion("classical", "hog-knn")
    Path("plots/confusion/hog-knn.csv").write_text("actual,predicted\n")
    with pytest.raises(DataError, match=r"hog-knn\.csv: no rows"):
        results.read_confusion("classical", "hog-knn")

    with pytest.raises(DataError, match=r"^plots/history/lenet5\.csv: not found \(run `dvc repro train_cnn@lenet5`\)$"):
        results.read_history("lenet5")
    Path("plots/history").mkdir(parents=True)
    header = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate\n"
    Path("plots/history/lenet5.csv").write_text(header + "1,2.0,0.5,2.1,0.4,0.001\n2,1.0,0.7,,0.6,0.001\n")
    history = results.read_history("lenet5")
    assert history["accuracy"].tolist() == [0.5, 0.7] and np.isnan(history["val_loss"][1])
    Path("plots/history/lenet5.csv").write_text(header + "1,2.0,lots,2.1,0.4,0.001\n")
    with pytest.raises(DataError, match=r"lenet5\.csv: not numeric .*; rerun `dvc repro train_cnn@lenet5`"):
        results.read_history("lenet5")
    Path("plots/history/lenet5.csv").write_text("epoch,loss\n1,2.0\n")
    with pytest.raises(DataError, match=r"missing column\(s\) accuracy, val_accuracy, val_loss"):
        results.read_history("lenet5")

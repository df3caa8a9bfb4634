"""pipeline.results: the per-model files written by record_model and read back by compare."""
from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from models import statistics
from comparison import results as scoring
from comparison.errors import ComparisonError
from pipeline import layout, read_results, results
from pipeline.errors import DataError
from pipeline.model_logging import log_model_files

CLASSES = ["cat", "dog", "emu"]
SPLIT = "e" * 64


@pytest.fixture
def workdir(mlflow_tmp):
    return mlflow_tmp


def wilson(correct: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval written out (z: the 97.5 % normal quantile)."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def predictions(y_true, y_pred, scores=None, kind="probability") -> results.Predictions:
    if scores is None:  # probabilities peaked on the predicted class
        scores = np.full((len(y_pred), len(CLASSES)), 0.1, dtype=np.float32)
        scores[np.arange(len(y_pred)), y_pred] = 0.8
    return results.Predictions.of(y_true, y_pred, scores, kind)


def record(run, model_id="hog-knn", test=None, val=None, **kwargs):
    model = Path("model.bin")
    model.write_bytes(b"x" * 1234)
    test = test or predictions([0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 2, 2])
    val = val or predictions([0, 1, 2], [0, 1, 1])
    log_files = None if run is None else (  # as train_cnn does
        lambda scores, info, png: log_model_files(run.info.run_id, scores, info, png))
    return results.record_model(
        run=run, log_files=log_files, approach="classical" if "-" in model_id else "deep", model_id=model_id, test=test, val=val,
        class_names=CLASSES, param_count=42, model_path=model,
        run_info={"feature": "hog", "classifier": "knn", "dataset": "toy", "split_sha256": SPLIT,
                  "fit_seconds": 0.5, "predict_images_per_s": 100.0},
        extra_scores={"val_accuracy": 0.75}, **{"seed": 7, "confidence": 0.95, "bootstrap_resamples": 200, **kwargs})


def test_record_model_writes_the_files_and_logs_to_the_given_run(workdir):
    client = MlflowClient()
    experiment_id = client.create_experiment("results-test", artifact_location=(workdir / "art").as_uri())
    target = client.create_run(experiment_id)
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 2, 2, 2])
    with mlflow.start_run(experiment_id=experiment_id) as other:  # a different run is active
        result = record(target)
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
    low, high = wilson(5, 6)
    f1_low, f1_high = statistics.bootstrap_interval(
        y_true, y_pred, lambda t, p: statistics.macro_f1(t, p, 3), resamples=200, seed=7, confidence=0.95)
    bal_low, bal_high = statistics.bootstrap_interval(
        y_true, y_pred, lambda t, p: statistics.balanced_accuracy(t, p, 3), resamples=200, seed=7, confidence=0.95)
    # F1 per class: 1, 2/3 (one dog called an emu), 4/5 (emus: precision 2/3)
    assert scores == {"test_accuracy": pytest.approx(5 / 6, abs=1e-6),
                      "macro_f1": pytest.approx(37 / 45, abs=1e-6),
                      "test_accuracy_ci_low": pytest.approx(low, abs=1e-6),
                      "test_accuracy_ci_high": pytest.approx(high, abs=1e-6),
                      "macro_f1_ci_low": round(f1_low, 6), "macro_f1_ci_high": round(f1_high, 6),
                      # recall per class 1, 1/2, 1 (test); 1, 1, 0 on val (the emu called a dog)
                      "balanced_accuracy": pytest.approx(5 / 6, abs=1e-6),
                      "balanced_accuracy_ci_low": round(bal_low, 6), "balanced_accuracy_ci_high": round(bal_high, 6),
                      "val_balanced_accuracy": pytest.approx(2 / 3, abs=1e-6),
                      "n_test": 6, "score_kind": "probability",
                      "param_count": 42, "model_bytes": 1234, "val_accuracy": 0.75,
                      # one seed (evaluation.repeats 1): its own values, no spread
                      "repeats": 1, "test_accuracy_mean": scores["test_accuracy"], "test_accuracy_sd": 0.0,
                      "val_accuracy_mean": 0.75, "macro_f1_mean": scores["macro_f1"], "macro_f1_sd": 0.0,
                      "per_seed": {"seed": [7], "test_accuracy": [scores["test_accuracy"]],
                                   "val_accuracy": [0.75], "macro_f1": [scores["macro_f1"]]}}
    assert scores["test_accuracy_ci_low"] < scores["test_accuracy"] < scores["test_accuracy_ci_high"]
    assert scores["macro_f1_ci_low"] < scores["macro_f1"] <= scores["macro_f1_ci_high"]
    for key in ("test_accuracy_ci_low", "test_accuracy_ci_high", "macro_f1_ci_low", "macro_f1_ci_high", "n_test"):
        assert logged.data.metrics[key] == scores[key], key
    assert "score_kind" not in logged.data.metrics
    # round trip: what compare reads is what was recorded
    (row,) = read_results.read_rows({"classical": ["hog-knn"], "deep": []})
    assert (row["model"], row["feature"], row["classifier"], row["arch"]) == ("hog-knn", "hog", "knn", "")
    assert row["test_accuracy"] == scores["test_accuracy"] and row["param_count"] == 42
    assert row["model_bytes"] == 1234 and row["split_sha256"] == SPLIT
    assert row["mlflow_run_id"] == target.info.run_id
    for key in ("test_accuracy_ci_low", "test_accuracy_ci_high", "macro_f1_ci_low", "macro_f1_ci_high"):
        assert row[key] == scores[key], key
    assert row["n_test"] == 6 and row["score_kind"] == "probability"
    actual, predicted = read_results.read_confusion("classical", "hog-knn")
    assert actual == [CLASSES[i] for i in y_true] and predicted == [CLASSES[i] for i in y_pred]
    test = read_results.read_predictions("hog-knn", "test")
    assert test.y_true.tolist() == y_true.tolist() and test.y_pred.tolist() == y_pred.tolist()
    assert test.index.tolist() == list(range(6)) and test.score_kind == "probability"
    assert len(read_results.read_predictions("hog-knn", "val")) == 3


def test_same_predictions_give_byte_identical_files(workdir):
    client = MlflowClient()
    experiment_id = client.create_experiment("results-bytes", artifact_location=(workdir / "art").as_uri())
    paths = [Path("metrics/cnn/lenet5.json"), Path("predictions/lenet5/test.csv"), Path("predictions/lenet5/val.csv")]
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 3, 90)
    test = predictions(y_true, np.where(rng.random(90) < 0.7, y_true, 0))
    record(client.create_run(experiment_id), "lenet5", test=test)
    first = [p.read_bytes() for p in paths]
    record(client.create_run(experiment_id), "lenet5", test=test)
    assert [p.read_bytes() for p in paths] == first
    record(client.create_run(experiment_id), "lenet5", test=test, seed=8)  # the bootstrap seed is the one passed
    assert json.loads(paths[0].read_text())["macro_f1_ci_low"] != json.loads(first[0])["macro_f1_ci_low"]


def test_record_model_summarises_the_extra_seeds(workdir):
    client = MlflowClient()
    run = client.create_run(client.create_experiment("results-repeats", artifact_location=(workdir / "a").as_uri()))
    extra = [{"seed": 11, "test_accuracy": 0.5, "val_accuracy": 1.0, "macro_f1": 0.4},
             {"seed": 12, "test_accuracy": 2 / 3, "val_accuracy": 0.5, "macro_f1": 0.6}]
    result = record(run, repeats=extra)
    scores = json.loads(Path("metrics/classical/hog-knn.json").read_text())
    accuracy, f1 = [5 / 6, 0.5, 2 / 3], [37 / 45, 0.4, 0.6]
    assert scores["repeats"] == 3 and scores["per_seed"] == {
        "seed": [7, 11, 12], "test_accuracy": [round(a, 6) for a in accuracy], "val_accuracy": [0.75, 1.0, 0.5],
        "macro_f1": [round(f, 6) for f in f1]}
    assert scores["test_accuracy"] == round(5 / 6, 6)  # the model's own scores stay the first seed's
    assert scores["test_accuracy_mean"] == pytest.approx(0.666667, abs=1e-6)
    # sample sd (ddof=1) of 5/6, 1/2, 2/3: their deviations are +1/6, -1/6, 0 -> sqrt((2/36) / 2) = 1/6
    assert scores["test_accuracy_sd"] == pytest.approx(1 / 6, abs=2e-6)
    assert scores["val_accuracy_mean"] == 0.75 and "val_accuracy_sd" not in scores
    assert scores["macro_f1_mean"] == pytest.approx((37 / 45 + 1.0) / 3, abs=1e-6)
    assert scores["macro_f1_sd"] == pytest.approx(np.std(f1, ddof=1), abs=2e-6)
    logged = client.get_run(run.info.run_id).data.metrics
    for key in ("repeats", "test_accuracy_mean", "test_accuracy_sd", "val_accuracy_mean", "macro_f1_mean",
                "macro_f1_sd"):
        assert logged[key] == scores[key] == result[key], key
    assert not any(key.startswith("per_seed") for key in logged)  # lists are no metrics
    (row,) = read_results.read_rows({"classical": ["hog-knn"]})
    assert row["repeats"] == 3 and row["test_accuracy_sd"] == scores["test_accuracy_sd"]
    assert row["macro_f1_mean"] == scores["macro_f1_mean"] and row["per_seed"] == scores["per_seed"]


def test_record_model_rejects_scores_that_do_not_match_the_classes(workdir):
    run = MlflowClient().create_run(MlflowClient().create_experiment("results-bad"))
    wide = predictions([0, 1], [0, 1], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="one column per class"):
        record(run, test=wide)
    with pytest.raises(ValueError, match="differ in kind"):
        record(run, val=predictions([0, 1, 2], [0, 1, 1], np.zeros((3, 3)), "decision_function"))
    assert not Path("metrics/classical/hog-knn.json").exists()


def test_score_intervals_contain_the_estimates_and_follow_the_settings(workdir):
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 3, 300)
    y_pred = np.where(rng.random(300) < 0.8, y_true, (y_true + 1) % 3)
    test = predictions(y_true, y_pred)
    wide = scoring.score_intervals(test, 3, seed=1, confidence=0.99, resamples=500)
    narrow = scoring.score_intervals(test, 3, seed=1, confidence=0.8, resamples=500)
    accuracy = float(np.mean(y_true == y_pred))
    f1 = statistics.macro_f1(y_true, y_pred, 3)
    for interval in (wide, narrow):
        assert interval["test_accuracy_ci_low"] < accuracy < interval["test_accuracy_ci_high"]
        assert interval["macro_f1_ci_low"] < f1 < interval["macro_f1_ci_high"]
    assert wide["test_accuracy_ci_low"] < narrow["test_accuracy_ci_low"]
    assert wide["macro_f1_ci_high"] > narrow["macro_f1_ci_high"]
    correct = int(np.sum(y_true == y_pred))
    assert narrow["test_accuracy_ci_low"] == round(statistics.wilson_interval(correct, 300, 0.8)[0], 6)
    assert list(wide) == ["test_accuracy_ci_low", "test_accuracy_ci_high", "macro_f1_ci_low", "macro_f1_ci_high",
                          "balanced_accuracy_ci_low", "balanced_accuracy_ci_high"]


# --- per-image predictions ---------------------------------------------------------------------

def test_predictions_round_trip_exactly(workdir):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 3)).astype(np.float32) * 5
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = rng.integers(0, 3, 50)
    written = results.Predictions(np.arange(100, 150), y_true, probabilities.argmax(axis=1), probabilities,
                                  "probability")
    path = results.write_predictions("lenet5", "test", written)
    assert path == Path("predictions/lenet5/test.csv")
    read = read_results.read_predictions("lenet5", "test")
    for field in ("index", "y_true", "y_pred"):
        assert getattr(read, field).tolist() == getattr(written, field).tolist(), field
    assert np.array_equal(read.scores, probabilities.astype(np.float64))  # float32 values, bit for bit
    assert read.scores.shape == (50, 3) and read.score_kind == ""  # no metrics JSON: kind unknown
    assert read.correct.tolist() == (written.y_true == written.y_pred).tolist()

    decision = np.array([[-1.5, 2.25, -np.inf], [1e-12, -3.0, -np.inf]])  # a class never seen in training
    results.write_predictions("hog-linear_svm", "val", results.Predictions.of([0, 1], [0, 1], decision,
                                                                              "decision_function"))
    assert Path("predictions/hog-linear_svm/val.csv").read_text() == (
        "index,y_true,y_pred,score_0,score_1,score_2\n0,0,0,-1.5,2.25,-inf\n1,1,1,9.99999996e-13,-3,-inf\n")
    Path("metrics/classical").mkdir(parents=True)
    Path("metrics/classical/hog-linear_svm.json").write_text(json.dumps({"score_kind": "decision_function"}))
    read = read_results.read_predictions("hog-linear_svm", "val")
    assert read.score_kind == "decision_function" and read.scores[0].tolist() == [-1.5, 2.25, -np.inf]


def test_writing_predictions_checks_the_arrays(workdir):
    with pytest.raises(ValueError, match="scores"):
        results.write_predictions("lenet5", "test", results.Predictions.of([0, 1], [0, 1], np.zeros(2), "probability"))
    with pytest.raises(ValueError, match="score_kind"):
        results.write_predictions("lenet5", "test", results.Predictions.of([0], [0], np.ones((1, 2)), "logits"))
    with pytest.raises(ValueError, match="part must be one of val, test"):
        layout.predictions_path("lenet5", "train")
    assert not Path("predictions").exists()


HEADER = "index,y_true,y_pred,score_0,score_1\n"


@pytest.mark.parametrize("text, problem", [
    ("index,y_true,score_0\n0,1,0.5\n", r"columns must be index,y_true,y_pred,score_0..score_<k-1>; "
                                         r"got index,y_true,score_0"),
    ("index,y_true,y_pred,score_1\n0,1,1,0.5\n", "columns must be"),
    ("index,y_true,y_pred\n0,1,1\n", "columns must be"),
    ("", "got none"),
    (HEADER, "no rows"),
    (HEADER + "0,1,1,0.5\n", "line 2 has 4 fields, the header 5"),
    (HEADER + "0,one,1,0.5,0.5\n", "index, y_true and y_pred must be integers"),
    (HEADER + "0,1,1,0.5,lots\n", "scores must be numbers"),
    (HEADER + "0,1,1,0.5,0.5\n0,0,0,0.5,0.5\n", "index must be distinct positions >= 0"),
    (HEADER + "-1,1,1,0.5,0.5\n", "index must be distinct"),
    (HEADER + "0,1,2,0.5,0.5\n", "label 2 outside the 2 score columns"),
    (HEADER + "0,-1,1,0.5,0.5\n", "label -1 outside"),
    (HEADER + "0,1,1,nan,0.5\n", "NaN score"),
])
def test_bad_prediction_files_name_the_file_and_the_stage(workdir, text, problem):
    Path("predictions/sift-knn").mkdir(parents=True)
    Path("predictions/sift-knn/val.csv").write_text(text)
    with pytest.raises(ComparisonError) as error:
        read_results.read_predictions("sift-knn", "val")
    message = str(error.value)
    assert "\n" not in message and message.startswith("predictions/sift-knn/val.csv: ")
    assert message.endswith("; rerun `dvc repro train_classical@sift-knn`")
    assert re.search(problem, message), message


def test_missing_prediction_files_name_the_stage_of_either_approach(workdir):
    with pytest.raises(ComparisonError) as deep:
        read_results.read_predictions("lenet5", "test")
    assert str(deep.value) == "predictions/lenet5/test.csv: not found (run `dvc repro train_cnn@lenet5`)"
    with pytest.raises(ComparisonError) as classical:
        read_results.read_predictions("hog-rbf_svm", "val")
    assert str(classical.value) == ("predictions/hog-rbf_svm/val.csv: not found "
                                    "(run `dvc repro train_classical@hog-rbf_svm`)")


def _write_model(approach: str, model_id: str, scores: dict | None = None) -> None:
    layout.scores_path(approach, model_id).parent.mkdir(parents=True, exist_ok=True)
    layout.scores_path(approach, model_id).write_text(json.dumps(
        scores or {"test_accuracy": 0.9, "macro_f1": 0.89, "param_count": 10}))
    layout.run_info_path(approach, model_id).write_text(json.dumps({"split_sha256": SPLIT, "dataset": "toy"}))


def test_missing_files_are_all_named_with_their_stage(workdir):
    _write_model("classical", "hog-knn")
    Path("metrics/classical/hog-knn.run.json").unlink()
    ids = {"classical": ["hog-knn", "raw-knn"], "deep": ["lenet5"]}
    with pytest.raises(DataError) as error:
        read_results.read_rows(ids)
    message = str(error.value)
    assert "\n" not in message and message.startswith("missing metrics of 3 configured model(s): ")
    assert "metrics/classical/hog-knn.run.json (run `dvc repro train_classical@hog-knn`)" in message
    assert ("metrics/classical/raw-knn.json and metrics/classical/raw-knn.run.json "
            "(run `dvc repro train_classical@raw-knn`)") in message
    assert "metrics/cnn/lenet5.json and metrics/cnn/lenet5.run.json (run `dvc repro train_cnn@lenet5`)" in message
    many = {"classical": [f"f{i}-knn" for i in range(6)], "deep": []}
    with pytest.raises(DataError, match=r"6 configured model\(s\): .*; and 2 more \(or run `dvc repro` for all\)$"):
        read_results.read_rows(many)


def test_bad_values_name_the_file_and_the_fix(workdir):
    _write_model("deep", "lenet5", {"test_accuracy": "high", "macro_f1": True, "param_count": 5})
    with pytest.raises(ComparisonError, match=r"^metrics/cnn/lenet5\.json / lenet5\.run\.json: missing or non-numeric "
                                        r"test_accuracy, macro_f1; rerun `dvc repro train_cnn@lenet5`$"):
        read_results.read_rows({"deep": ["lenet5"]})
    old = scoring.model_row("deep", "lenet5", {"test_accuracy": 1, "macro_f1": 1, "param_count": 1,
                                               "split_sha256": SPLIT}, where="here", fix="fix it")
    assert (old["test_accuracy_ci_low"], old["macro_f1_ci_high"], old["n_test"], old["score_kind"]) == (
        None, None, None, "")  # written before intervals existed
    assert (old["repeats"], old["test_accuracy_mean"], old["macro_f1_sd"], old["per_seed"]) == (
        None, None, None, None)  # written before repeats existed
    with pytest.raises(ComparisonError, match="no split_sha256 recorded"):
        scoring.model_row("deep", "lenet5", {"test_accuracy": 1, "macro_f1": 1, "param_count": 1},
                          where="here", fix="fix it")


def test_confusion_and_history_readers_fail_in_one_line(workdir):
    with pytest.raises(DataError,
                       match=r"^plots/confusion/lenet5\.csv: not found \(run `dvc repro train_cnn@lenet5`\)$"):
        read_results.read_confusion("deep", "lenet5")
    Path("plots/confusion").mkdir(parents=True)
    Path("plots/confusion/hog-knn.csv").write_text("actual,guess\ncat,dog\n")
    with pytest.raises(DataError, match=r"hog-knn\.csv: missing column\(s\) predicted .*train_classical@hog-knn"):
        read_results.read_confusion("classical", "hog-knn")
    Path("plots/confusion/hog-knn.csv").write_text("actual,predicted\n")
    with pytest.raises(DataError, match=r"hog-knn\.csv: no rows"):
        read_results.read_confusion("classical", "hog-knn")

    with pytest.raises(DataError, match=r"^plots/history/lenet5\.csv: not found \(run `dvc repro train_cnn@lenet5`\)$"):
        read_results.read_history("lenet5")
    Path("plots/history").mkdir(parents=True)
    header = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,epoch_seconds,test_accuracy\n"
    Path("plots/history/lenet5.csv").write_text(header + "1,2.0,0.5,2.1,0.4,0.001,1.5,0.45\n"
                                                "2,1.0,0.7,,0.6,0.001,1.2,0.65\n")
    history = read_results.read_history("lenet5")
    assert history["accuracy"].tolist() == [0.5, 0.7] and np.isnan(history["val_loss"][1])
    assert history["test_accuracy"].tolist() == [0.45, 0.65] and history["epoch_seconds"].tolist() == [1.5, 1.2]
    Path("plots/history/lenet5.csv").write_text(header + "1,2.0,lots,2.1,0.4,0.001,1.5,0.45\n")
    with pytest.raises(DataError, match=r"lenet5\.csv: not numeric .*; rerun `dvc repro train_cnn@lenet5`"):
        read_results.read_history("lenet5")
    Path("plots/history/lenet5.csv").write_text("epoch,loss\n1,2.0\n")
    with pytest.raises(DataError, match=r"missing column\(s\) accuracy, val_accuracy, val_loss, epoch_seconds, "
                                        r"test_accuracy .*rerun `dvc repro train_cnn@lenet5`"):
        read_results.read_history("lenet5")

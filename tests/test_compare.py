"""The compare stage: leaderboard, summary, plots, MLflow comparison run, --from-mlflow.

Fake per-model files (the format of pipeline/results.py) plus real MLflow runs in a
temporary SQLite store; no training happens here.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pipeline import compare, leaderboard, report_plots
from pipeline.config import parse_config
from pipeline.errors import ConfigError, DataError

from helpers import REPO_ROOT

EXPERIMENT = "cvd-compare-test"
SPLIT = "a" * 64
OTHER_SPLIT = "b" * 64
CLASSES = [str(i) for i in range(10)]
N_TEST = 360
# model id -> (approach, test_accuracy, macro_f1, param_count, model_bytes, fit_seconds, images/s)
FAKE = {
    "raw-rbf_svm": ("classical", 0.975, 0.9748, 512_345, 1_250_000, 0.41, 9_800.0),
    "raw-knn": ("classical", 0.969444, 0.9690, 1_249_290, 2_600_000, 0.004, 2_100.0),
    "hog-rbf_svm": ("classical", 0.988889, 0.9887, 123_456, 480_000, 0.62, 7_300.0),
    "hog-knn": ("classical", 0.980556, 0.9803, 396_216, 820_000, 0.003, 3_900.0),
    "lenet5": ("deep", 0.991667, 0.9915, 61_706, 760_000, 12.3, 25_000.0),
}
EXPECTED_ORDER = ["lenet5", "hog-rbf_svm", "hog-knn", "raw-rbf_svm", "raw-knn"]


def make_config(features=("raw", "hog"), classifiers=("rbf_svm", "knn"), archs=("lenet5",), experiment=EXPERIMENT):
    raw = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    raw["features"]["names"] = list(features)
    raw["classical"]["classifiers"] = list(classifiers)
    raw["cnn"]["architectures"] = list(archs)
    raw["mlflow"]["experiment"] = experiment
    return parse_config(raw)


def _metrics_dir(approach: str) -> Path:
    return Path("metrics/classical" if approach == "classical" else "metrics/cnn")


def write_model(model_id: str, values=None, *, run_id: str = "", split: str = SPLIT, seed: int = 0) -> None:
    """The files one train stage leaves behind: scores, run info, confusion rows, CNN history."""
    approach, acc, f1, params, size, fit, rate = values or FAKE[model_id]
    out = _metrics_dir(approach)
    out.mkdir(parents=True, exist_ok=True)
    scores = {"test_accuracy": acc, "macro_f1": f1, "param_count": params, "model_bytes": size,
              "val_accuracy": round(acc - 0.004, 6)}
    info = {"model": model_id, "approach": approach, "dataset": "digits", "split_sha256": split,
            "fit_seconds": fit, "predict_images_per_s": rate, "mlflow_run_id": run_id,
            "mlflow_experiment_id": "1"}
    if approach == "classical":
        feature, classifier = model_id.split("-", 1)
        scores["feature_dim"] = 1024
        info.update(feature=feature, classifier=classifier)
    else:
        scores.update(trainable_params=params, epochs_run=8)
        info.update(arch=model_id, epoch_seconds=1.5, device="CPU")
    (out / f"{model_id}.json").write_text(json.dumps(scores))
    (out / f"{model_id}.run.json").write_text(json.dumps(info))

    rng = np.random.default_rng(seed)
    actual = np.repeat(np.arange(10), N_TEST // 10)
    predicted = actual.copy()
    wrong = rng.choice(N_TEST, size=round((1 - acc) * N_TEST), replace=False)
    predicted[wrong] = (actual[wrong] + rng.integers(1, 10, size=len(wrong))) % 10
    Path("plots/confusion").mkdir(parents=True, exist_ok=True)
    with open(f"plots/confusion/{model_id}.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        writer.writerows((CLASSES[a], CLASSES[p]) for a, p in zip(actual, predicted))
    if approach == "deep":
        Path("plots/history").mkdir(parents=True, exist_ok=True)
        epochs = np.arange(1, 9)
        with open(f"plots/history/{model_id}.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                             "epoch_seconds"])
            for e in epochs:
                writer.writerow([e, 2.3 * np.exp(-e / 2) + 0.02, 1 - 0.9 * np.exp(-e / 1.5),
                                 2.3 * np.exp(-e / 2.2) + 0.05, 1 - 0.9 * np.exp(-e / 1.6) - 0.01, 0.001, 1.5])


def write_manifest(split: str = SPLIT) -> None:
    Path("data/prepared").mkdir(parents=True, exist_ok=True)
    Path("data/prepared/manifest.json").write_text(json.dumps({"sha256": split, "class_names": CLASSES,
                                                               "dataset": "digits"}))


def log_model_run(client: MlflowClient, experiment_id: str, model_id: str, *, start_time: int,
                  accuracy: float | None = None, status: str = "FINISHED", split: str = SPLIT) -> str:
    """A model run as the train stages log it: shared tags, shared metric names."""
    approach, acc, f1, params, size, fit, rate = FAKE[model_id]
    tags = {"approach": approach, "model": model_id, "dataset": "digits", "split_sha256": split,
            "mlflow.runName": f"{approach}-{model_id}"}
    if approach == "classical":
        tags.update(zip(("feature", "classifier"), model_id.split("-", 1)))
    else:
        tags["arch"] = model_id
    run = client.create_run(experiment_id, start_time=start_time, tags=tags)
    metrics = {"test_accuracy": acc if accuracy is None else accuracy, "macro_f1": f1, "param_count": params,
               "model_bytes": size, "fit_seconds": fit, "predict_images_per_s": rate}
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value, timestamp=start_time)
    client.set_terminated(run.info.run_id, status=status, end_time=start_time + 1000)
    return run.info.run_id


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _run_quietly(func, *args, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = func(*args, **kwargs)
    return result, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """One workspace: 5 configured models with MLflow runs, a stale file, then `compare.run`."""
    tmp = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{tmp}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("CVD_PIPELINE_RUN", "test-pipeline")
        cfg = make_config()
        client = MlflowClient(tracking_uri=uri)
        experiment_id = client.create_experiment(EXPERIMENT, artifact_location=(tmp / "mlartifacts").as_uri())
        t0 = 1_700_000_000_000
        # history the MLflow rebuild must see through: an older lenet5 run, a newer FAILED one,
        # and a newer run on another split
        log_model_run(client, experiment_id, "lenet5", start_time=t0, accuracy=0.5)
        run_ids = {mid: log_model_run(client, experiment_id, mid, start_time=t0 + 10_000 * (i + 1))
                   for i, mid in enumerate(FAKE)}
        log_model_run(client, experiment_id, "raw-knn", start_time=t0 + 900_000, accuracy=1.0, status="FAILED")
        log_model_run(client, experiment_id, "raw-rbf_svm", start_time=t0 + 900_000, accuracy=1.0,
                      split=OTHER_SPLIT)
        for i, mid in enumerate(FAKE):
            write_model(mid, run_id=run_ids[mid], seed=i)
        # a model no longer configured: better than all, on another split -- must be ignored
        write_model("sift-logreg", ("classical", 0.999, 0.999, 10, 10, 0.1, 1.0), split=OTHER_SPLIT)
        write_manifest()
        df, out, err = _run_quietly(compare.run, cfg)
    return SimpleNamespace(tmp=tmp, uri=uri, cfg=cfg, df=df, out=out, err=err, run_ids=run_ids,
                           experiment_id=experiment_id)


def test_leaderboard_ranks_every_configured_model(compared):
    df = compared.df
    assert list(df["model"]) == EXPECTED_ORDER
    assert list(df["rank"]) == [1, 2, 3, 4, 5]
    assert list(df["test_accuracy"]) == sorted(df["test_accuracy"], reverse=True)
    assert sorted(df["approach"]) == ["classical"] * 4 + ["deep"]
    assert "sift-logreg" not in set(df["model"])
    with open(compared.tmp / "reports/leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == EXPECTED_ORDER
    assert rows[1]["feature"] == "hog" and rows[1]["classifier"] == "rbf_svm" and rows[0]["arch"] == "lenet5"
    assert rows[1]["mlflow_run_id"] == compared.run_ids["hog-rbf_svm"]
    md = (compared.tmp / "reports/leaderboard.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(EXPECTED_ORDER) and "`lenet5`" in table[2] and "61,706" in table[2]
    # printed: header, rule, one line per model (thousands separators, sizes), verdict last
    lines = compared.out.strip().splitlines()
    assert lines[0].split()[:3] == ["#", "approach", "model"]
    assert lines[2].split()[:3] == ["1", "deep", "lenet5"] and "61,706" in lines[2] and "760.0 KB" in lines[2]
    raw_knn = next(line for line in lines if "raw-knn" in line)
    assert "1,249,290" in raw_knn and "2.6 MB" in raw_knn and " 0.004 " in raw_knn
    assert lines[-1] == ("deep wins by 0.3 points: lenet5 99.2 % vs hog-rbf_svm 98.9 %, "
                         "with 61,706 vs 123,456 parameters and 12.3 s vs 0.6 s fit")
    assert "warning" not in compared.err


def test_summary_names_best_of_each_approach(compared):
    summary = json.loads((compared.tmp / "reports/summary.json").read_text())
    assert summary["best_classical"] == {"model": "hog-rbf_svm", "test_accuracy": 0.988889,
                                         "param_count": 123_456, "fit_seconds": 0.62}
    assert summary["best_deep"] == {"model": "lenet5", "test_accuracy": 0.991667,
                                    "param_count": 61_706, "fit_seconds": 12.3}
    assert summary["accuracy_difference"] == pytest.approx(0.002778)
    assert summary["winner"] == "deep"
    assert summary["n_models"] == 5 and summary["dataset"] == "digits" and summary["split_sha256"] == SPLIT


def test_four_readable_pngs(compared):
    for name in compare.PLOT_NAMES:
        width, height = _png_size(compared.tmp / "reports/plots" / f"{name}.png")
        assert width >= 600 and height >= 300, name
    assert sorted(p.name for p in (compared.tmp / "reports/plots").iterdir()) == sorted(
        f"{n}.png" for n in compare.PLOT_NAMES)


def test_comparison_run_is_parent_of_the_model_runs(compared):
    client = MlflowClient(tracking_uri=compared.uri)
    runs = client.search_runs([compared.experiment_id], "tags.approach = 'comparison'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "comparison" and run.info.status == "FINISHED"
    assert run.data.tags["stage"] == "compare" and run.data.tags["split_sha256"] == SPLIT
    assert set(run.data.tags["model_runs"].split(",")) == set(compared.run_ids.values())
    assert run.data.metrics["best_classical_accuracy"] == pytest.approx(0.988889)
    assert run.data.metrics["best_deep_accuracy"] == pytest.approx(0.991667)
    assert run.data.metrics["accuracy_difference"] == pytest.approx(0.002778)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"leaderboard.csv", "leaderboard.md", "summary.json", "plots"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        f"plots/{n}.png" for n in compare.PLOT_NAMES}
    for model_id, run_id in compared.run_ids.items():
        assert client.get_run(run_id).data.tags.get("mlflow.parentRunId") == run.info.run_id, model_id


def test_from_mlflow_rebuilds_the_same_ranking(compared, monkeypatch):
    monkeypatch.chdir(compared.tmp)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", compared.uri)
    before = (compared.tmp / "reports/leaderboard.csv").read_bytes()
    df, out, _ = _run_quietly(compare.run, compared.cfg, from_mlflow=True)
    # the older lenet5 run, the FAILED raw-knn run and the other-split raw-rbf_svm run are ignored
    assert list(df["model"]) == EXPECTED_ORDER
    assert list(df["mlflow_run_id"]) == [compared.run_ids[m] for m in EXPECTED_ORDER]
    assert list(df["test_accuracy"]) == pytest.approx(list(compared.df["test_accuracy"]))
    assert list(df["param_count"]) == list(compared.df["param_count"])
    assert (compared.tmp / "reports/leaderboard_mlflow.csv").is_file()
    assert (compared.tmp / "reports/leaderboard_mlflow.md").is_file()
    assert (compared.tmp / "reports/leaderboard.csv").read_bytes() == before
    assert out.strip().splitlines()[-1] == compared.out.strip().splitlines()[-1]


def test_unknown_experiment_lists_existing_ones(compared, monkeypatch):
    monkeypatch.chdir(compared.tmp)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", compared.uri)
    with pytest.raises(DataError, match=rf"experiment 'nope' not found .*existing: .*{EXPERIMENT}"):
        compare.run(compared.cfg, from_mlflow=True, experiment="nope")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("CVD_PIPELINE_RUN", "test-pipeline")
    return tmp_path


def test_missing_metrics_file_names_it_and_its_stage(workdir):
    for i, mid in enumerate(FAKE):
        write_model(mid, seed=i)
    Path("metrics/classical/hog-knn.json").unlink()
    with pytest.raises(DataError, match=r"metrics/classical/hog-knn\.json .*`dvc repro train_classical@hog-knn`"):
        compare.run(make_config())
    assert not Path("reports").exists()


def test_different_splits_are_refused(workdir):
    for i, mid in enumerate(FAKE):
        write_model(mid, seed=i, split=OTHER_SPLIT if mid == "lenet5" else SPLIT)
    with pytest.raises(DataError, match=r"different splits: .*hog-rbf_svm.* on split aaaaaaaaaaaa; lenet5 on split bbb"):
        compare.run(make_config())
    assert not Path("reports").exists()


def test_missing_model_runs_warn_but_do_not_fail(workdir, compared, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", compared.uri)  # an existing store: no migration wait
    # the plots are checked above; keep this test quick
    monkeypatch.setattr(compare, "_figures",
                        lambda *args: {name: report_plots.figure(2, 2) for name in compare.PLOT_NAMES})
    for i, mid in enumerate(FAKE):  # run ids the store does not know (e.g. a deleted mlflow.db)
        write_model(mid, seed=i, run_id=f"{i:032x}" if mid != "raw-knn" else "")
    df, out, err = _run_quietly(compare.run, make_config(experiment="cvd-compare-test-missing"))
    assert len(df) == 5 and Path("reports/summary.json").is_file()
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, err
    assert warnings[0] == "warning: no mlflow_run_id in the .run.json of raw-knn; not linked to the comparison run"
    assert warnings[1].startswith("warning: MLflow run(s) of lenet5 (00000000000000000000000000000004), ")
    assert "not linked" in warnings[1] and "(+0 more)" not in warnings[1]
    assert "parent of 0 of 5 model runs" in out


def test_experiment_option_needs_from_mlflow(workdir):
    with pytest.raises(ConfigError, match="--from-mlflow"):
        compare.run(make_config(), experiment="other")


def test_verdict_tie_and_classical_win():
    def summary(c_acc, d_acc):
        best_c = {"model": "hog-rbf_svm", "test_accuracy": c_acc, "param_count": 123_456, "fit_seconds": 0.4}
        best_d = {"model": "lenet5", "test_accuracy": d_acc, "param_count": 61_706, "fit_seconds": 12.34}
        rows = leaderboard.rank_rows([
            {"approach": "classical", "model": "hog-rbf_svm", "macro_f1": c_acc, "split_sha256": SPLIT,
             "dataset": "digits", **best_c},
            {"approach": "deep", "model": "lenet5", "macro_f1": d_acc, "split_sha256": SPLIT,
             "dataset": "digits", **best_d},
        ])
        return leaderboard.build_summary(rows)

    tie = summary(0.974, 0.974)
    assert tie["winner"] == "tie" and tie["accuracy_difference"] == 0
    assert leaderboard.verdict(tie).startswith("tie at 97.4 %: lenet5 vs hog-rbf_svm")
    classical = summary(0.9745, 0.9741)
    assert classical["winner"] == "classical"
    assert leaderboard.verdict(classical) == ("classical wins by 0.04 points: hog-rbf_svm 97.45 % vs lenet5 97.41 %, "
                                          "with 123,456 vs 61,706 parameters and 0.4 s vs 12.3 s fit")


def test_cli_reports_unknown_experiment_in_one_line(workdir, compared, monkeypatch):
    from click.testing import CliRunner

    from pipeline.cli import cli

    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", compared.uri)
    result = CliRunner().invoke(cli, ["compare", "--from-mlflow", "--experiment", "nope"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("error: MLflow experiment 'nope' not found")

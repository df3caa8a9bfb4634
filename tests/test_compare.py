"""The compare stage: leaderboard, summary, verdict, plots, MLflow comparison run,
--from-mlflow, --pair.

Fake per-model files (the format of pipeline/results.py, per-image predictions included)
plus real MLflow runs in a temporary SQLite store; no training happens here.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import re
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from comparison import plots as report_plots
from comparison.errors import ComparisonError
from pipeline import compare, model_runs
from pipeline.config import parse_config
from pipeline.errors import ConfigError, DataError

from helpers import REPO_ROOT, new_mlflow_store, write_model_predictions

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


def make_raw(features=("raw", "hog"), classifiers=("rbf_svm", "knn"), archs=("lenet5",), experiment=EXPERIMENT):
    raw = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    raw["features"]["names"] = list(features)
    raw["classical"]["classifiers"] = list(classifiers)
    raw["cnn"]["architectures"] = list(archs)
    raw["mlflow"]["experiment"] = experiment
    return raw


def make_config(**kwargs):
    return parse_config(make_raw(**kwargs))


def _metrics_dir(approach: str) -> Path:
    return Path("metrics/classical" if approach == "classical" else "metrics/cnn")


def write_model(model_id: str, values=None, *, run_id: str = "", split: str = SPLIT, seed: int = 0) -> None:
    """The files one train stage leaves behind: scores, run info, predictions, confusion rows, CNN history."""
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
    write_model_predictions(model_id, actual, predicted, 10)
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
                             "epoch_seconds", "test_accuracy"])
            for e in epochs:
                writer.writerow([e, 2.3 * np.exp(-e / 2) + 0.02, 1 - 0.9 * np.exp(-e / 1.5),
                                 2.3 * np.exp(-e / 2.2) + 0.05, 1 - 0.9 * np.exp(-e / 1.6) - 0.01, 0.001, 1.5,
                                 round(1 - 0.9 * np.exp(-e / 1.6) - 0.02, 6)])


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
               "model_bytes": size, "fit_seconds": fit, "predict_images_per_s": rate,
               "val_accuracy": round(acc - 0.004, 6), **({"epochs_run": 8} if approach == "deep" else {})}
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
    uri = new_mlflow_store(tmp)
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
    assert lines[-1] == VERDICT
    assert lines[-5].startswith("95 % CI: Wilson interval of the test accuracy on 360 test images. ≈ top: ")
    assert lines[-2].startswith("registered classic-vs-deep-digits: ")
    # the only warnings: these hand-made runs have no logged model to register
    warnings = [line for line in compared.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: not registered in classic-vs-deep-digits: "), \
        warnings


# lenet5 gets 3 of the 360 test images wrong, hog-rbf_svm 4, no image in common: 4 vs 3 discordant,
# a difference of 1/360
VERDICT = ("no significant difference at this test-set size: deep (lenet5) ahead of classical (hog-rbf_svm) by "
           "0.3 points, 95 % CI [-1.1, 1.7], McNemar p = 1 (4 vs 3 images), with 61,706 vs 123,456 parameters "
           "(best of each approach chosen on validation accuracy, compared on 360 test images); "
           "about 19,777 test images would be needed to detect a 0.3-point difference; "
           "metric: accuracy (auto, test classes 1:1); "  # this manifest has no class counts: the test images'
           "budgets: deep (lenet5) 8 epochs in 12.3 s, classical (hog-rbf_svm) one fit in 0.6 s")  # nor split counts


def test_summary_names_best_of_each_approach(compared):
    summary = json.loads((compared.tmp / "reports/summary.json").read_text())
    assert summary["selection"] == "validation accuracy"
    # Wilson intervals of 356/360 and 357/360 (z = 1.96)
    best = dict(summary["best_classical"])
    low, high = best.pop("balanced_accuracy_ci_low"), best.pop("balanced_accuracy_ci_high")
    assert best == {"model": "hog-rbf_svm", "val_accuracy": 0.984889, "test_accuracy": 0.988889,
                    "test_accuracy_ci_low": pytest.approx(0.97178, abs=2e-5),
                    "test_accuracy_ci_high": pytest.approx(0.99567, abs=2e-5),
                    "param_count": 123_456, "fit_seconds": 0.62,
                    "repeats": None, "test_accuracy_mean": None, "test_accuracy_sd": None,
                    # every class has 36 test images: balanced accuracy = accuracy
                    "balanced_accuracy": 0.988889, "macro_f1": 0.9887,
                    "val_balanced_accuracy": None}  # not in these hand-made metrics
    assert low < 0.988889 < high <= 1.0
    assert summary["metric"] == {"name": "accuracy", "setting": "auto", "class_ratio": 1.0, "counted": "test",
                                 "statement": "metric: accuracy (auto, test classes 1:1)"}
    assert summary["best_deep"]["model"] == "lenet5" and summary["best_deep"]["val_accuracy"] == 0.987667
    assert summary["accuracy_difference"] == pytest.approx(0.002778)
    verdict = summary["verdict"]
    assert {k: verdict[k] for k in ("difference", "only_classical", "only_deep", "n_test", "p_value")} == {
        "difference": pytest.approx(1 / 360, abs=1e-6), "only_classical": 3, "only_deep": 4, "n_test": 360,
        "p_value": 1.0}
    assert verdict["ci_low"] < 0 < verdict["ci_high"] and verdict["significant"] is False
    # near the normal approximation 1/360 ± 1.96·sqrt(7)/360 = [-0.0116, 0.0172]
    assert verdict["ci_low"] == pytest.approx(-0.0116, abs=0.002)
    assert verdict["ci_high"] == pytest.approx(0.0172, abs=0.002)
    assert verdict["images_needed"] > 360 and verdict["winner"] == summary["winner"] == "no significant difference"
    assert "mean_difference" not in verdict  # the metrics record no means over seeds
    assert summary["n_models"] == 5 and summary["dataset"] == "digits" and summary["split_sha256"] == SPLIT


def test_leaderboard_csv_has_intervals_and_near_top_marks(compared):
    with open(compared.tmp / "reports/leaderboard.csv", newline="") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    # raw-knn: 11 wrong vs lenet5's 3 -- significantly worse; the others are not
    assert {m: r["near_top"] for m, r in rows.items()} == {
        "lenet5": "yes", "hog-rbf_svm": "yes", "hog-knn": "yes", "raw-rbf_svm": "yes", "raw-knn": ""}
    assert rows["lenet5"]["p_value_vs_top"] == "" and float(rows["raw-knn"]["p_value_vs_top"]) < 0.05
    for r in rows.values():
        assert float(r["test_accuracy_ci_low"]) < float(r["test_accuracy"]) < float(r["test_accuracy_ci_high"])
        assert float(r["macro_f1_ci_low"]) < float(r["macro_f1"]) < float(r["macro_f1_ci_high"])
        assert r["n_test"] == "360"
    md = (compared.tmp / "reports/leaderboard.md").read_text()
    assert "| [97.6, 99.7] | yes " in md
    assert "≈ top: yes = not significantly worse than #1 `lenet5`" in md


def test_readable_pngs_and_the_budget_curve_points(compared):
    for name in compare.PLOT_NAMES:
        width, height = _png_size(compared.tmp / "reports/plots" / f"{name}.png")
        assert width >= 600 and height >= 300, name
    assert sorted(p.name for p in (compared.tmp / "reports/plots").iterdir()) == sorted(
        [f"{n}.png" for n in compare.PLOT_NAMES] + ["budget_curve.csv"])
    with open(compared.tmp / "reports/plots/budget_curve.csv", newline="") as fh:
        points = list(csv.DictReader(fh))
    assert [p["model"] for p in points] == ["hog-knn", "raw-knn", "raw-rbf_svm", "hog-rbf_svm"] + ["lenet5"] * 8
    assert [p["seconds"] for p in points if p["model"] == "lenet5"] == [str(1.5 * e) for e in range(1, 9)]


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
    assert run.data.metrics["verdict.difference"] == pytest.approx(1 / 360, abs=1e-6)
    assert run.data.metrics["verdict.ci_low"] < 0 < run.data.metrics["verdict.ci_high"]
    assert (run.data.metrics["verdict.p_value"], run.data.metrics["verdict.significant"]) == (1.0, 0.0)
    assert (run.data.metrics["verdict.only_classical"], run.data.metrics["verdict.only_deep"]) == (3.0, 4.0)
    assert run.data.metrics["verdict.n_test"] == 360 and run.data.tags["selection"] == "validation accuracy"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"leaderboard.csv", "leaderboard.md", "summary.json", "plots"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        f"plots/{n}.png" for n in compare.PLOT_NAMES} | {"plots/budget_curve.csv"}
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
def workdir(mlflow_tmp, monkeypatch):
    monkeypatch.setenv("CVD_PIPELINE_RUN", "test-pipeline")
    return mlflow_tmp


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
    with pytest.raises(ComparisonError, match=r"different splits: .*hog-rbf_svm.* on split aaaaaaaaaaaa; lenet5 on split bbb"):
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
    assert len(warnings) == 3, err  # the third: runs that do not exist cannot be registered either
    assert warnings[2].startswith("warning: not registered in classic-vs-deep-digits: lenet5 as champion, best-deep")
    assert warnings[0] == "warning: no mlflow_run_id in the .run.json of raw-knn; not linked to the comparison run"
    assert warnings[1].startswith("warning: MLflow run(s) of lenet5 (00000000000000000000000000000004), ")
    assert "not linked" in warnings[1] and "(+0 more)" not in warnings[1]
    assert "parent of 0 of 5 model runs" in out


def test_experiment_option_needs_from_mlflow(workdir):
    with pytest.raises(ConfigError, match="--from-mlflow"):
        compare.run(make_config(), experiment="other")


def test_cli_reports_unknown_experiment_in_one_line(workdir, compared, monkeypatch):
    from click.testing import CliRunner

    from pipeline.cli import cli

    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", compared.uri)
    result = CliRunner().invoke(cli, ["compare", "--from-mlflow", "--experiment", "nope"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("error: MLflow experiment 'nope' not found")


def _write_params(**kwargs) -> None:
    """params.yaml in the current directory, as make_config builds it."""
    Path("params.yaml").write_text(yaml.safe_dump(make_raw(**kwargs)))


def test_pair_compares_two_models_and_writes_nothing(workdir):
    from click.testing import CliRunner

    from pipeline.cli import cli

    for i, mid in enumerate(FAKE):
        write_model(mid, seed=i)
    _write_params()
    result = CliRunner().invoke(cli, ["compare", "--pair", "raw-knn", "lenet5"])
    assert result.exit_code == 0, result.output
    head, line = result.output.strip().splitlines()
    assert head == "raw-knn 96.94 % vs lenet5 99.17 % test accuracy on the same 360 test images"
    # lenet5 is right on 10 images raw-knn gets wrong, the reverse on 2: exact two-sided p = 0.0386
    assert re.fullmatch(r"lenet5 beats raw-knn by 2\.2 points, 95 % CI \[(\d\.\d), (\d\.\d)\], McNemar p = 0\.039 "
                        r"\(10 vs 2 images\), with 61,706 vs 1,249,290 parameters and 12\.3 s vs 0\.004 s fit "
                        r"\(compared on 360 test images\); metric: accuracy \(auto, test classes 1:1\)", line), line
    low, high = map(float, re.search(r"CI \[(\S+), (\S+)\]", line).groups())
    # near the normal approximation 2.2 ± 1.96·sqrt(12)/360 (in points): [0.3, 4.1]
    assert low == pytest.approx(0.3, abs=0.35) and high == pytest.approx(4.1, abs=0.35)
    assert not Path("reports").exists()


def test_pair_on_a_1_to_20_training_split_compares_balanced_accuracy(workdir):
    """evaluation.metric auto reads the training split's class counts from the manifest."""
    from click.testing import CliRunner

    from pipeline.cli import cli

    for i, mid in enumerate(FAKE):
        write_model(mid, seed=i)
    _write_params()
    write_manifest()
    manifest = json.loads(Path("data/prepared/manifest.json").read_text())
    manifest["counts_per_class"] = {"train": {c: 400 if c == "0" else 20 for c in CLASSES}}
    Path("data/prepared/manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(cli, ["compare", "--pair", "raw-knn", "lenet5"])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    # 36 test images per class: balanced accuracy = accuracy, the difference as above, and the permutation
    # test is McNemar's (exact p = 0.0386) by Monte Carlo
    match = re.fullmatch(r"lenet5 beats raw-knn by 2\.2 points of balanced accuracy, 95 % CI \[\S+, \S+\], "
                         r"permutation p = (\S+) \(10 vs 2 images\), with .* \(compared on 360 test images\); "
                         r"metric: balanced accuracy \(auto, training classes 1:20\)", line)
    assert match and float(match.group(1)) == pytest.approx(0.0386, abs=0.01), line


@pytest.mark.parametrize("args, message", [
    (["--pair", "raw-knn", "sift-knn"], "error: --pair: 'sift-knn' not a configured model; configured: raw-rbf_svm"),
    (["--pair", "lenet5", "lenet5"], "error: --pair: needs two different models; got 'lenet5' twice"),
    (["--pair", "lenet5", "raw-knn", "--from-mlflow"], "error: --pair: compares the models' prediction files"),
])
def test_pair_mistakes_are_one_line(workdir, args, message):
    from click.testing import CliRunner

    from pipeline.cli import cli

    _write_params()
    result = CliRunner().invoke(cli, ["compare", *args])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(message), result.output


def test_stale_predictions_are_refused(workdir):
    for i, mid in enumerate(FAKE):
        write_model(mid, seed=i)
    labels = np.repeat(np.arange(10), N_TEST // 10)
    write_model_predictions("hog-knn", labels, labels, 10)  # all right: not what its metrics record
    with pytest.raises(ComparisonError, match=r"predictions/hog-knn/test\.csv: accuracy 1\.000000, but hog-knn's recorded "
                                        r"test_accuracy is 0\.980556; rerun `dvc repro train_classical@hog-knn`"):
        compare.run(make_config())
    write_model_predictions("hog-knn", labels[::-1], labels[::-1], 10)  # other labels: another split
    with pytest.raises(ComparisonError, match=r"predictions/hog-knn/test\.csv: not the same test images .* as "
                                        r"predictions/lenet5/test\.csv"):
        compare.run(make_config())
    assert not Path("reports").exists()


def test_best_of_each_approach_is_chosen_on_validation(workdir, monkeypatch):
    monkeypatch.setattr(compare, "_figures",
                        lambda *args: {name: report_plots.figure(2, 2) for name in compare.PLOT_NAMES})
    monkeypatch.setattr(model_runs, "log_comparison", lambda *args: ("run", 0, []))
    for i, mid in enumerate(FAKE):
        write_model(mid, seed=i)
    # raw-knn: worst on test, best on validation
    scores = json.loads(Path("metrics/classical/raw-knn.json").read_text())
    Path("metrics/classical/raw-knn.json").write_text(json.dumps({**scores, "val_accuracy": 0.999}))
    df, out, _ = _run_quietly(compare.run, make_config())
    assert df["model"].iloc[0] == "lenet5" and df["model"].iloc[-1] == "raw-knn"  # the table: by test
    summary = json.loads(Path("reports/summary.json").read_text())
    assert summary["best_classical"]["model"] == "raw-knn" and summary["best_classical"]["val_accuracy"] == 0.999
    assert summary["verdict"]["only_deep"] == 10 and summary["verdict"]["only_classical"] == 2
    assert summary["verdict"]["significant"] is True and summary["winner"] == "deep"
    assert out.strip().splitlines()[-1].startswith(
        "deep (lenet5) beats classical (raw-knn) by 2.2 points, 95 % CI [")


def test_means_over_seeds_reach_table_summary_verdict_and_mlflow(workdir, compared, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", compared.uri)  # an existing store: no migration wait
    monkeypatch.setattr(compare, "_figures",  # the dots on the bars: tests/test_report_plots.py
                        lambda *args: {name: report_plots.figure(2, 2) for name in compare.PLOT_NAMES})
    seeds = {"lenet5": [0.991667, 0.986111, 0.983333], "hog-rbf_svm": [0.988889]}  # hog-rbf_svm: trained once
    for i, mid in enumerate(FAKE):
        write_model(mid, seed=i)
        path = _metrics_dir(FAKE[mid][0]) / f"{mid}.json"
        scores = json.loads(path.read_text())
        accs = seeds.get(mid, [FAKE[mid][1]])
        mean, sd = float(np.mean(accs)), float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
        scores.update(repeats=len(accs), test_accuracy_mean=round(mean, 6), test_accuracy_sd=round(sd, 6),
                      val_accuracy_mean=scores["val_accuracy"], macro_f1_mean=round(mean, 6), macro_f1_sd=round(sd, 6),
                      per_seed={"seed": list(range(len(accs))), "test_accuracy": accs,
                                "val_accuracy": [scores["val_accuracy"]] * len(accs), "macro_f1": accs})
        path.write_text(json.dumps(scores))
    _, out, _ = _run_quietly(compare.run, make_config(experiment="cvd-compare-test-seeds"))

    # lenet5: mean 0.987037, sd 0.004243 over 3 seeds; the per-image verdict is unchanged
    suffix = ("; classical (hog-rbf_svm) 98.9 % over 1 seed, deep (lenet5) 98.7 ± 0.4 % over 3 seeds "
              "(mean ± sd of test accuracy)")
    assert out.strip().splitlines()[-1] == VERDICT + suffix
    summary = json.loads(Path("reports/summary.json").read_text())
    assert {k: summary["best_deep"][k] for k in ("model", "repeats", "test_accuracy_mean", "test_accuracy_sd")} == {
        "model": "lenet5", "repeats": 3, "test_accuracy_mean": 0.987037, "test_accuracy_sd": 0.004243}
    assert (summary["best_classical"]["repeats"], summary["best_classical"]["test_accuracy_sd"]) == (1, 0.0)
    assert summary["verdict"]["mean_difference"] == pytest.approx(0.987037 - 0.988889, abs=1e-9)
    assert summary["verdict"]["difference"] == pytest.approx(1 / 360, abs=1e-6)  # still the first seed's
    md = Path("reports/leaderboard.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert "|   mean ± sd (seeds) |" in table[0] and "|      98.7 ± 0.4 (3) |" in table[2]
    with open("reports/leaderboard.csv", newline="") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    assert (rows["lenet5"]["repeats"], rows["lenet5"]["test_accuracy_sd"], rows["raw-knn"]["repeats"]) == (
        "3", "0.004243", "1")
    client = MlflowClient(tracking_uri=compared.uri)
    experiment = client.get_experiment_by_name("cvd-compare-test-seeds")
    (run,) = client.search_runs([experiment.experiment_id], "tags.approach = 'comparison'")
    metrics = run.data.metrics
    assert (metrics["best_deep_accuracy_mean"], metrics["best_deep_accuracy_sd"]) == (0.987037, 0.004243)
    assert (metrics["best_classical_accuracy_mean"], metrics["best_classical_accuracy_sd"]) == (0.988889, 0.0)
    assert metrics["verdict.mean_difference"] == pytest.approx(-0.001852, abs=1e-9)

"""End to end: real `dvc repro`, real MLflow (SQLite file and an `mlflow server`), real TensorFlow.

The session's one real `dvc repro` (conftest ``small_run``: two feature sets x two classifiers
+ LeNet-5 on 30 digits per class) is checked as it came out of its fresh run: every stage ran
once, every output and MLflow run is there, DVC shows the metrics and plots. A copy of that
finished repository (outputs, DVC cache and MLflow store) then checks caching, which stages an
edit outdates, and queued experiments running in parallel into a tracking server on 127.0.0.1.
A selective rerun with `dvc exp run -S` logging to a server is member 2's experiment in
tests/test_team.py.
"""
from __future__ import annotations

import csv
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from import_graph import stages_importing

from helpers import SMALL_RUN_ARCHS as ARCHS
from helpers import SMALL_RUN_CLASSIFIERS as CLASSIFIERS
from helpers import SMALL_RUN_CURVE_FRACTIONS
from helpers import SMALL_RUN_FEATURES as FEATURES
import helpers
from helpers import SMALL_RUN_LIMIT_PER_CLASS, copy_finished_repo, venv_env, warm_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.heavy]

CLASSICAL_STAGES = {f"train_classical@{f}-{c}" for f in FEATURES for c in CLASSIFIERS}
EVERY_STAGE = ({"code_digests", "prepare", "compare", "explain"} | {f"features@{f}" for f in FEATURES} | CLASSICAL_STAGES
               | {f"train_cnn@{a}" for a in ARCHS} | {f"learning_curve@{f}" for f in SMALL_RUN_CURVE_FRACTIONS})
CURVE_STAGES = {f"learning_curve@{f}" for f in SMALL_RUN_CURVE_FRACTIONS}  # they retrain the chosen models
# which stages an edit of each module outdates (`dvc status`): the stages whose command imports it
# (features/conv.py serves tests, `cvd describe` and the lecture's examples on the report: explain only)
OUTDATED_BY_AN_EDIT = {
    "features/extractors/hog.py": {"features@hog", "explain"},  # explain draws HOG's cells
    "models/evaluate.py": CLASSICAL_STAGES | CURVE_STAGES | {"train_cnn@lenet5", "compare", "explain"},
    "pipeline/results.py": CLASSICAL_STAGES | {"train_cnn@lenet5"},  # the per-model files' writer
    "pipeline/read_results.py": CURVE_STAGES | {"compare", "explain"},  # their reader
    "models/architectures/lenet5.py": CURVE_STAGES | {"train_cnn@lenet5"},
    "features/conv.py": {"explain"},
}


def dvc(repo: Path, *args: str, env: dict | None = None, timeout: int = 900) -> str:
    env = env or venv_env()
    env["PYTHONPATH"] = str(repo)  # the copy runs its own code
    out = subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"dvc {' '.join(args)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def model_ids() -> list[str]:
    return [f"{f}-{c}" for f in FEATURES for c in CLASSIFIERS] + ARCHS


@pytest.fixture(scope="module")
def repo(small_run) -> Path:
    """The session's small run, read only."""
    return small_run


@pytest.fixture(scope="module")
def workspace(small_run, tmp_path_factory) -> Path:
    """A copy of the finished small run, for the tests that edit, rerun or experiment."""
    return copy_finished_repo(small_run, tmp_path_factory.mktemp("e2e") / "repo")


def test_the_fresh_repro_ran_every_stage_once(repo):
    printed = (repo.parent / "repro.log").read_text()
    ran = re.findall(r"Running stage '([^']+)'", printed)
    assert sorted(ran) == sorted(EVERY_STAGE), printed[-3000:]
    # it ran on the small params: the lock records them, the split holds 30 digits per class in all
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert lock["prepare"]["params"]["params.yaml"]["data"]["limit_per_class"] == SMALL_RUN_LIMIT_PER_CLASS
    manifest = json.loads((repo / "data/prepared/manifest.json").read_text())
    assert manifest["class_names"] == [str(d) for d in range(10)]
    counts = manifest["counts_per_class"]
    assert {sum(counts[part][c] for part in counts) for c in manifest["class_names"]} == {SMALL_RUN_LIMIT_PER_CLASS}


def test_every_stage_output_exists(repo):
    for name in FEATURES:
        assert (repo / f"data/features/{name}.npz").is_file()
        assert json.loads((repo / f"metrics/features/{name}.json").read_text())["dimension"] > 0
    for mid in model_ids():
        sub = "cnn" if mid in ARCHS else "classical"
        scores = json.loads((repo / f"metrics/{sub}/{mid}.json").read_text())
        # 10 classes (chance 0.1): 30 digits per class are plenty for the classical models and for 10 epochs
        # of LeNet-5 (the small run's), and the CNN's size is its spec's
        assert scores["test_accuracy"] >= (0.5 if mid in ARCHS else 0.8), (mid, scores["test_accuracy"])
        if mid in ARCHS:
            from models.describe import layer_table

            assert scores["param_count"] == layer_table(mid, input_shape=(32, 32, 1), num_classes=10)[-1]["total"]
        assert (repo / f"plots/confusion/{mid}.csv").is_file()
    for arch in ARCHS:
        assert (repo / f"artifacts/cnn/{arch}.keras").is_file()
        assert (repo / f"plots/history/{arch}.csv").is_file()
    for name in ("accuracy_vs_params", "accuracy_bars", "confusion_best", "training_curves", "pairwise_pvalues"):
        assert (repo / f"reports/plots/{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (repo / "reports/index.html").read_text(encoding="utf-8")  # explain's report, every image beside it
    from pipeline.report_html import image_sources, missing_images

    assert {"explain/per_class.png", "explain/confusion_difference.png", "plots/accuracy_bars.png"} <= set(image_sources(page))
    assert missing_images(page, repo / "reports") == []


def test_leaderboard_has_one_row_per_configured_model(repo):
    with open(repo / "reports/leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["model"] for r in rows) == sorted(model_ids())
    assert {r["approach"] for r in rows} == {"classical", "deep"}
    accuracies = [float(r["test_accuracy"]) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    summary = json.loads((repo / "reports/summary.json").read_text())
    assert summary["best_classical"]["model"] in model_ids() and summary["best_deep"]["model"] in ARCHS


def test_each_mlflow_model_run_has_shared_metrics(repo):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classic-vs-deep")
    runs = [r for r in client.search_runs([experiment.experiment_id])
            if r.data.tags.get("approach") in ("classical", "deep")]
    by_model = {r.data.tags["model"]: r for r in runs}
    assert sorted(by_model) == sorted(model_ids())
    for run in by_model.values():
        for key in ("test_accuracy", "macro_f1", "param_count", "fit_seconds", "predict_images_per_s"):
            assert key in run.data.metrics, (run.data.tags["model"], key)
        assert run.data.tags["split_sha256"] == by_model["lenet5"].data.tags["split_sha256"]
    comparison = client.search_runs([experiment.experiment_id], "tags.approach = 'comparison'")
    assert len(comparison) == 1
    assert {r.data.tags.get("mlflow.parentRunId") for r in by_model.values()} == {comparison[0].info.run_id}


def test_dvc_metrics_and_plots_show(repo, tmp_path):
    metrics = json.loads(dvc(repo, "metrics", "show", "--json"))
    files = next(iter(metrics.values()))["data"]
    assert files["reports/summary.json"]["data"]["best_classical"]["model"] in model_ids()
    for mid in model_ids():
        sub = "cnn" if mid in ARCHS else "classical"
        shown = files[f"metrics/{sub}/{mid}.json"]["data"]
        written = json.loads((repo / f"metrics/{sub}/{mid}.json").read_text())
        # DVC shows every number and string; the per_seed lists stay in the file (and in MLflow's seed runs)
        assert shown == {k: v for k, v in written.items() if not isinstance(v, dict)}
        assert shown["test_accuracy_ci_low"] <= shown["test_accuracy"] <= shown["test_accuracy_ci_high"]

    out = tmp_path / "dvc_plots"
    dvc(repo, "plots", "show", "-o", str(out))
    html = (out / "index.html").read_text()
    for name in ("accuracy_vs_params", "accuracy_bars", "confusion_best", "training_curves", "pairwise_pvalues"):
        assert f"{name}.png" in html, name
    for mid in model_ids():
        assert f"plots/confusion/{mid}.csv" in html, mid  # the confusion template, one per model
    for arch in ARCHS:
        assert f"{arch} training curves" in html, arch  # plots/history/<arch>.csv, titled in dvc.yaml


def test_second_repro_reruns_nothing(workspace):
    out = dvc(workspace, "repro")
    assert stages_run(out) == set()
    assert "up to date" in out.lower()


@pytest.mark.parametrize("module", sorted(OUTDATED_BY_AN_EDIT))
def test_editing_a_module_outdates_exactly_the_stages_that_import_it(workspace, module):
    repo = workspace
    stages = dvc(repo, "stage", "list", "--name-only").split()
    expected = OUTDATED_BY_AN_EDIT[module]
    assert stages_importing(module, stages, root=repo) == expected  # dvc.yaml's deps follow the imports
    path = repo / module
    kept = {p: p.read_bytes() for p in [path, repo / "dvc.lock", *(repo / "code_digests").rglob("*.txt")]}
    try:
        path.write_bytes(kept[path] + b"\n# an edit\n")
        assert set(json.loads(dvc(repo, "status", "--json"))) == {"code_digests"}  # it reads every package
        dvc(repo, "repro", "code_digests", env=warm_env())  # the digest files of the stages that run it change
        status = json.loads(dvc(repo, "status", "--json"))
    finally:
        for p, content in kept.items():
            p.write_bytes(content)
    assert set(status) == expected
    assert json.loads(dvc(repo, "status", "--json")) == {}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> str:
    """An `mlflow server` on a free 127.0.0.1 port with its own SQLite file; yields its URI."""
    with helpers.mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri


def experiment_refs(repo: Path) -> set[str]:
    """The git refs DVC keeps of finished experiments (``refs/exps/<baseline sha>/<name>``) and of
    failed queued ones (``refs/exps/celery/failed``)."""
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=repo, check=True,
                         capture_output=True, text=True).stdout.split()
    return {ref for ref in out if re.match(r"refs/exps/([0-9a-f]{2}/|celery/failed$)", ref)}


def server_runs(uri: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("classic-vs-deep")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def test_parallel_queue_writes_to_the_server(workspace, mlflow_server):
    """`dvc queue start -j 2`: two experiments run at once and each lands complete on the server
    (up to `compare`, which logs the runs: explain's report would add nothing to the check)."""
    repo = workspace
    env = warm_env({"MLFLOW_TRACKING_URI": mlflow_server})
    for c in ("0.5", "2.0"):
        dvc(repo, "exp", "run", "--queue", "-S", f"classical.logreg.C={c}", "compare", env=env)
    before = experiment_refs(repo)
    dvc(repo, "queue", "start", "-j", "2", env=env)
    deadline = time.monotonic() + 900
    # a look at git refs is milliseconds, `dvc queue status` a second of CPU: ask DVC once both are done
    # (or one failed)
    while time.monotonic() < deadline:
        new = experiment_refs(repo) - before
        if len(new) >= 2 or any(ref.endswith("/failed") for ref in new):
            break
        time.sleep(1)
    while True:
        status = dvc(repo, "queue", "status", env=env)
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        assert time.monotonic() < deadline, f"queue still busy after 900 s:\n{status}"
        time.sleep(2)
    assert len(re.findall(r"\bSuccess\b", status)) == 2, status

    runs = [r for r in server_runs(mlflow_server) if r.data.tags.get("dvc_exp_name")]
    by_exp: dict[str, set[str]] = {}
    for run in runs:
        assert run.info.status == "FINISHED", (run.info.run_name, run.info.status)
        by_exp.setdefault(run.data.tags["dvc_exp_name"], set()).add(run.info.run_name)
    expected = {f"classical-{f}-logreg" for f in FEATURES} | {"comparison"}
    # the unchanged k-NN models too, where this server has no run of their files yet (this test alone)
    unchanged = {f"classical-{f}-knn" for f in FEATURES}
    assert len(by_exp) == 2 and all(expected <= names <= expected | unchanged for names in by_exp.values()), by_exp
    c_values = {r.data.params["C"] for r in runs if r.data.tags.get("classifier") == "logreg"}
    assert c_values == {"0.5", "2.0"}

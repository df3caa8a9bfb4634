"""The MLflow tracking server as a dependency that can be down (issue 23, item 1).

A server that refuses connections is one line naming the URI and MLFLOW_TRACKING_URI, before
any work; one that stops answering while a stage trains costs that stage's run, never its
outputs: DVC records them, and `compare` / `cvd log` log the missing runs once it is back.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pytest
import yaml

from helpers import (REPO_ROOT, SMALL_RUN_CLASSIFIERS, SMALL_RUN_FEATURES, SMALL_RUN_EPOCHS, copy_finished_repo,
                     free_port, mlflow_server, refuses_connections, venv_env, warm_env)

HTTP_SETTINGS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT")


def test_bounded_waits_for_a_server_are_defaults_that_the_users_own_values_override(monkeypatch):
    from pipeline.store import HTTP_DEFAULTS, tracking_uri

    for name in HTTP_SETTINGS:  # recorded as unset, so whatever tracking_uri sets is undone after the test
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri().startswith("sqlite:///")
    assert not any(name in os.environ for name in HTTP_SETTINGS)  # the local store: untouched

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "6")
    tracking_uri()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "6"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]
    assert int(os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"]) < 2  # MLflow's own default waits minutes


def test_a_failed_logging_call_is_remembered_and_the_later_ones_are_skipped():
    from mlflow.exceptions import MlflowException

    from pipeline.store import Guard

    calls = []

    def refused():
        calls.append("refused")
        raise MlflowException("API request to http://127.0.0.1:9/api/2.0/mlflow/runs/log-batch failed with exception "
                              "HTTPConnectionPool(...): Max retries exceeded (Caused by NewConnectionError(\"...: "
                              "[Errno 111] Connection refused\"))")

    guard = Guard()
    assert guard(lambda: 7) == 7 and not guard.failed
    assert guard(refused) is None and guard(calls.append, "later") is None
    assert calls == ["refused"] and guard.error == "Connection refused"
    with pytest.raises(KeyError):  # a bug is not a store that went down
        Guard()({}.__getitem__, "missing")


def test_a_server_that_refuses_connections_is_one_line_before_any_work(tmp_path):
    port = free_port()
    assert refuses_connections(port)
    uri = f"http://127.0.0.1:{port}"
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    env = venv_env({"MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(REPO_ROOT)})
    # MLflow's own settings alone retried for 4 minutes; the timeout bounds the wait without timing it
    out = subprocess.run(["cvd", "prepare"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.splitlines() == [
        f"error: MLflow tracking server {uri} (set by MLFLOW_TRACKING_URI) does not answer: Connection refused; "
        f"start it, or unset MLFLOW_TRACKING_URI to log to the local mlflow.db"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing prepared, no local store


# --- a real server stopped in the middle of `dvc repro` and started again ---------------------

MODELS = [f"{f}-{c}" for f in SMALL_RUN_FEATURES for c in SMALL_RUN_CLASSIFIERS] + ["lenet5"]


def _wait_for_running_cnn_run(uri: str, repro: subprocess.Popen, timeout: float = 300) -> None:
    """Until ``train_cnn`` has opened its run on the server (it then trains for a few seconds)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and repro.poll() is None:
        experiment = client.get_experiment_by_name("classic-vs-deep")
        if experiment and client.search_runs([experiment.experiment_id], "tags.stage = 'train_cnn' AND "
                                             "attributes.status = 'RUNNING'"):
            return
        time.sleep(0.1)
    pytest.fail(f"no running train_cnn run on the server; dvc repro: {repro.poll()}")


def _stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.heavy
def test_a_server_stopped_during_dvc_repro_costs_no_training_and_every_run_reaches_it_once(small_run, tmp_path):
    repo = copy_finished_repo(small_run, tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["cnn"]["epochs"] = SMALL_RUN_EPOCHS + 2  # reruns train_cnn@lenet5 and compare only
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "store").mkdir()
    port = free_port()
    env = warm_env({"PYTHONPATH": str(repo), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})

    with mlflow_server(tmp_path / "store", port=port) as uri:
        repro = subprocess.Popen(["dvc", "repro", "compare"], cwd=repo, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        _wait_for_running_cnn_run(uri, repro)
    assert refuses_connections(port)  # stopped while lenet5 trains
    stdout, stderr = repro.communicate(timeout=600)
    assert repro.returncode != 0 and _stages(stdout) == {"train_cnn@lenet5", "compare"}, stdout + stderr
    assert "Traceback" not in stderr
    (warning,) = [line for line in stderr.splitlines() if line.startswith("warning: MLflow")]
    assert f"MLflow logging to {uri} failed (Connection refused); lenet5's outputs are complete" in warning
    (error,) = [line for line in stderr.splitlines() if "does not answer" in line]
    assert f"MLflow tracking server {uri} (set by MLFLOW_TRACKING_URI) does not answer" in error  # compare's check
    info = json.loads((repo / "metrics/cnn/lenet5.run.json").read_text())
    assert "mlflow_run_id" not in info
    scores = json.loads((repo / "metrics/cnn/lenet5.json").read_text())

    with mlflow_server(tmp_path / "store", port=port):  # the same store, back at the same URI
        again = subprocess.run(["dvc", "repro", "compare"], cwd=repo, env=env, capture_output=True, text=True,
                               timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert _stages(again.stdout) == {"compare"}  # the trained lenet5 was recorded by DVC: not retrained
        logged = subprocess.run(["cvd", "log"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert logged.returncode == 0, logged.stdout + logged.stderr
        assert logged.stdout.startswith(f"0 model runs logged now to {uri}"), logged.stdout
        assert "the comparison run of these reports/ files is logged already" in logged.stdout
        _check_every_run_once(uri, info["mlflow_unfinished_run_id"], scores)


def _check_every_run_once(uri: str, unfinished: str, scores: dict) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("classic-vs-deep").experiment_id
    runs = client.search_runs([experiment], max_results=1000)  # the active (not deleted) runs
    per_model = {}
    for run in runs:
        if "seed" not in run.data.tags:
            per_model.setdefault(run.data.tags.get("model", run.data.tags["approach"]), []).append(run)
    assert sorted(per_model) == sorted([*MODELS, "comparison"])
    assert {model: [r.info.status for r in found] for model, found in per_model.items()} == {
        model: ["FINISHED"] for model in per_model}
    (lenet5,) = per_model["lenet5"]
    assert lenet5.info.run_id != unfinished
    assert len(client.get_metric_history(lenet5.info.run_id, "history.val_accuracy")) == scores["epochs_run"]
    assert lenet5.data.metrics["test_accuracy"] == scores["test_accuracy"]
    assert client.search_logged_models([experiment], filter_string=f"source_run_id = '{lenet5.info.run_id}'")
    stale = client.get_run(unfinished)
    assert (stale.info.status, stale.info.lifecycle_stage) == ("FAILED", "deleted")
    (comparison,) = per_model["comparison"]
    assert set(comparison.data.tags["model_runs"].split(",")) == {found[0].info.run_id for model, found in
                                                                  per_model.items() if model != "comparison"}

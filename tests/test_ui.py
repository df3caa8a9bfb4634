"""`cvd ui`: the MLflow UI on the project's store, its printed link landing on the model runs.

Fast tests build a small store by hand (the tags the stages set) and check the stored view and
the one-line errors; the slow one starts `cvd ui` on a real small pipeline run (conftest
``small_run``), opens the printed link in headless Chromium and reads the rendered runs table.
"""
from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from browser import browser_page, require_browser
from helpers import (REPO_ROOT, SMALL_RUN_ARCHS, SMALL_RUN_CLASSIFIERS, SMALL_RUN_FEATURES, refuses_connections,
                     venv_env)
from pipeline import ui, ui_views
from pipeline.cli import cli


def make_runs(client, experiment_id: str, models: list[str], seed_of: str | None = None) -> dict[str, str]:
    """One FINISHED run per model, tagged as the train stages tag theirs; ``{model: run id}``."""
    ids = {}
    for model in models:
        approach = "deep" if model == "lenet5" else "classical"
        run = client.create_run(experiment_id, run_name=f"{approach}-{model}",
                                tags={"approach": approach, "model": model, "stage": "train"})
        client.log_metric(run.info.run_id, "test_accuracy", 0.9)
        client.set_terminated(run.info.run_id)
        ids[model] = run.info.run_id
    if seed_of:  # an extra-seed run, nested under its model's run
        seed = client.create_run(experiment_id, tags={"approach": "classical", "model": seed_of, "seed": "7",
                                                      "mlflow.parentRunId": ids[seed_of]})
        client.set_terminated(seed.info.run_id)
    return ids


def comparison(client, experiment_id: str, ids: list[str]) -> None:
    run = client.create_run(experiment_id, run_name="comparison",
                            tags={"approach": "comparison", "model_runs": ",".join(ids)})
    client.set_terminated(run.info.run_id)


def views(client, experiment_id: str) -> dict[str, dict]:
    tags = client.get_experiment(experiment_id).tags
    return {k.removeprefix(ui_views.VIEW_TAG): json.loads(v) for k, v in tags.items() if k.startswith(ui_views.VIEW_TAG)}


def listed_ids(view: dict) -> set[str]:
    return set(re.findall(r"'([0-9a-f]{32})'", view["searchFilter"]))


@pytest.fixture
def store(mlflow_tmp: Path):
    import mlflow

    client = mlflow.MlflowClient()
    return client, client.create_experiment("exp"), client.create_experiment("exp-data")


def test_view_shows_the_latest_comparisons_model_runs(store):
    client, exp, data = store
    old = make_runs(client, exp, ["hog-logreg"])
    comparison(client, exp, list(old.values()))
    new = make_runs(client, exp, ["hog-logreg", "lenet5"], seed_of="hog-logreg")
    comparison(client, exp, list(new.values()))

    exp_id, key, n, data_id = ui_views.prepare_views("exp")
    assert (exp_id, n, data_id) == (exp, 2, data)
    stored = views(client, exp)
    assert list(stored) == [key]
    assert listed_ids(stored[key]) == set(new.values())
    assert stored[key]["selectedColumns"][0] == "metrics.`test_accuracy`"
    assert "tags.`approach`" in stored[key]["selectedColumns"]
    for experiment in (exp, data):
        assert client.get_experiment(experiment).tags[ui_views.KIND_TAG] == ui_views.KIND
    assert ui_views.runs_url("http://127.0.0.1:5", exp, key) == (
        f"http://127.0.0.1:5/#/experiments/{exp}/runs?workflowType=machine_learning&viewStateShareKey={key}")

    assert ui_views.prepare_views("exp")[1] == key and list(views(client, exp)) == [key]  # no pile-up on reruns
    newer = make_runs(client, exp, ["sobel-logreg"])
    comparison(client, exp, list(newer.values()))
    key2 = ui_views.prepare_views("exp")[1]
    assert key2 != key and list(views(client, exp)) == [key2]  # the older comparison's view is replaced


def test_without_comparison_the_newest_run_of_each_model(store):
    client, exp, _ = store
    make_runs(client, exp, ["hog-logreg"])
    newest = make_runs(client, exp, ["hog-logreg", "lenet5"], seed_of="lenet5")
    _, key, n, _ = ui_views.prepare_views("exp")
    assert n == 2 and listed_ids(views(client, exp)[key]) == set(newest.values())


def cvd(*args: str):
    return CliRunner().invoke(cli, ["ui", "--params", str(REPO_ROOT / "params.yaml"), *args])


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_no_store_yet_says_run_dvc_repro(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    one_line_error(cvd(), f"no MLflow store yet at {tmp_path}/mlflow.db: run `dvc repro` first")
    assert not (tmp_path / "mlflow.db").exists()


def test_unknown_experiment(store):
    one_line_error(cvd("--experiment", "nope"), "MLflow experiment 'nope' not found", "run `dvc repro` first")


def test_busy_port(store):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(cvd("--port", str(port)), f"--port = {port}: 127.0.0.1:{port} is busy")


@pytest.mark.slow
def test_printed_link_opens_on_the_model_runs(small_run):
    """`cvd ui` on a real run: the link shows the model runs, not the data or comparison runs;
    Ctrl-C stops the server."""
    import mlflow

    require_browser()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{small_run / 'mlflow.db'}")
    models = client.search_runs([client.get_experiment_by_name("classic-vs-deep").experiment_id],
                                "tags.approach != 'comparison'")
    data = client.search_runs([client.get_experiment_by_name("classic-vs-deep-data").experiment_id])
    model_names = sorted(r.info.run_name for r in models)
    data_names = sorted(r.info.run_name for r in data)
    assert model_names == sorted([f"classical-{f}-{c}" for f in SMALL_RUN_FEATURES for c in SMALL_RUN_CLASSIFIERS]
                                 + [f"deep-{a}" for a in SMALL_RUN_ARCHS])
    assert {"prepare-digits", *(f"features-{f}" for f in SMALL_RUN_FEATURES)} <= set(data_names)

    server = subprocess.Popen(["cvd", "ui"], cwd=small_run, env=venv_env({"PYTHONPATH": str(small_run)}),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        link = None
        deadline = time.monotonic() + ui.READY_TIMEOUT_S + 30
        while link is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            assert line, f"cvd ui ended early: {server.stderr.read()}"
            if line.startswith("models ("):
                link = line.split(": ", 1)[1].strip()
        assert link and "workflowType=machine_learning" in link and "viewStateShareKey=" in link
        with browser_page(1600, 1000) as page:
            page.goto(link)
            page.get_by_text(model_names[0], exact=True).first.wait_for(timeout=60_000)
            page.get_by_text("test_accuracy").first.wait_for(timeout=30_000)  # the metric column
            text = page.inner_text("body")
        for name in model_names:
            assert name in text
        for name in [*data_names, "comparison"]:
            assert name not in text
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
        assert server.returncode == 0, err
        assert "stopped mlflow ui" in out and "Traceback" not in err
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", link).group(1))
        assert refuses_connections(port)  # the server is gone, its workers too
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

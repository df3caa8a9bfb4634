"""``cvd ui``: the MLflow UI on the project's tracking store, opened on the model comparison.

It starts ``mlflow ui`` on :func:`pipeline.tracking.tracking_uri` (``MLFLOW_TRACKING_URI``
wins; a tracking *server* there already is a UI, so nothing is started) on 127.0.0.1 and
prints the link that lands on the experiment's runs in MLflow 3's model-training view
(``workflowType=machine_learning``: without it MLflow 3.17 opens the GenAI overview).

The link carries a shared view (MLflow's ``viewStateShareKey``: the view is stored as the
experiment tag ``mlflow.sharedViewState.<key>``) that shows exactly the model runs of the
newest ``comparison`` run -- flat, although ``compare`` made them its children, because the
comparison itself is filtered out -- sorted by test accuracy, with the columns the comparison
is about (:data:`COLUMNS`); its chart view shows those runs' test accuracy, parameter count and
fit time and test accuracy against parameter count. The view's format is MLflow 3.17's (checked
in headless Chromium by tests/test_ui.py): MLflow ignores what it does not know. Without a comparison yet,
the newest FINISHED run of each model. The prepare and features runs live in their own
experiment (:func:`pipeline.tracking.data_experiment`); ``cvd ui`` prints its link too.

The server stops with ``cvd ui``: Ctrl-C (SIGINT), SIGTERM (``kill``, a supervisor) and SIGHUP
(a closed terminal) all stop its process group and any process of it that left the group,
print ``stopped mlflow ui`` and exit with code 0.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, DataError

HOST = "127.0.0.1"
VIEW_TAG = "mlflow.sharedViewState."  # MLflow's prefix of a shared view's experiment tag
VIEW_KEY_PREFIX = "cvd-models-"
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
METRICS = ("test_accuracy", "test_accuracy_ci_low", "test_accuracy_ci_high", "val_accuracy", "param_count",
           "fit_seconds", "predict_images_per_s")
TAGS = ("approach", "feature", "classifier", "arch")
COLUMNS = [f"metrics.`{m}`" for m in METRICS] + [f"tags.`{t}`" for t in TAGS]
CHARTED = ("test_accuracy", "param_count", "fit_seconds")  # bar charts; plus test accuracy against param_count
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill or a supervisor, a closed terminal
READY_TIMEOUT_S = 180  # `mlflow ui` imports its server app first: ~40 s on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def check_port(port: int) -> None:
    """One line when ``port`` cannot be listened on (in use, or out of range)."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port = {port}: must be 1..65535")
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            raise ConfigError(f"--port = {port}: {HOST}:{port} is busy; choose another port or leave "
                              f"--port out for a free one") from None


def check_store(uri: str) -> None:
    """The local store must exist: ``mlflow ui`` would otherwise create an empty one."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise DataError(f"no MLflow store yet at {path}: run `dvc repro` first")
    elif "://" not in uri and not Path(uri).exists():
        raise DataError(f"no MLflow store yet at {uri}: run `dvc repro` first")


def model_run_ids(client: Any, experiment_id: str) -> list[str]:
    """The model runs of the newest comparison run, else the newest FINISHED run of each model."""
    comparisons = client.search_runs([experiment_id], "tags.approach = 'comparison' AND attributes.status = 'FINISHED'",
                                     order_by=["attributes.start_time DESC"], max_results=1)
    if comparisons and comparisons[0].data.tags.get("model_runs"):
        return comparisons[0].data.tags["model_runs"].split(",")
    newest: dict[str, str] = {}
    for approach in ("classical", "deep"):
        for run in client.search_runs([experiment_id], f"tags.approach = '{approach}' AND attributes.status = "
                                      f"'FINISHED'", order_by=["attributes.start_time DESC"], max_results=1000):
            if "seed" not in run.data.tags:  # a model's extra-seed runs are nested under it
                newest.setdefault(run.data.tags.get("model", run.info.run_id), run.info.run_id)
    return list(newest.values())


def view_state(run_ids: list[str]) -> dict:
    """MLflow's shared-view JSON: search facets and UI state of the runs page."""
    return {
        "searchFilter": "attributes.run_id IN (" + ", ".join(f"'{r}'" for r in run_ids) + ")",
        "orderByKey": "metrics.`test_accuracy`", "orderByAsc": False, "startTime": "ALL",
        "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
        "selectedColumns": COLUMNS, "columnOrder": COLUMNS, "runsHiddenMode": "SHOW_ALL",
        # the chart view: one section of the comparison's charts instead of one bar chart per metric
        "compareRunSections": [{"uuid": "cvd", "name": "Model comparison", "display": True, "isReordered": False}],
        "compareRunCharts": [*(_bar(m) for m in CHARTED), _scatter("param_count", "test_accuracy")],
        "isAccordionReordered": True,
    }


def _bar(metric: str) -> dict:
    return {"uuid": f"cvd-{metric}", "type": "BAR", "metricSectionId": "cvd", "isGenerated": False,
            "deleted": False, "metricKey": metric, "dataAccessKey": metric, "displayName": metric}


def _scatter(x: str, y: str) -> dict:
    return {"uuid": f"cvd-{x}-{y}", "type": "SCATTER", "metricSectionId": "cvd", "isGenerated": False,
            "deleted": False, "runsCountToCompare": 1000,
            "xaxis": {"key": x, "type": "METRIC", "dataAccessKey": x},
            "yaxis": {"key": y, "type": "METRIC", "dataAccessKey": y}}


def prepare_views(experiment: str) -> tuple[str, str | None, int, str | None]:
    """Tag the experiment's kind and store the models view; ``(experiment id, view key or None,
    number of model runs, id of the data experiment or None)``.

    Raises:
        DataError: the store or the experiment does not exist yet.
    """
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import data_experiment, tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri())
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise DataError(f"MLflow experiment {experiment!r} not found at {tracking_uri()}: run `dvc repro` first")
    data = client.get_experiment_by_name(data_experiment(experiment))
    for exp in filter(None, (found, data)):
        if exp.tags.get(KIND_TAG) != KIND:
            client.set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
    run_ids = model_run_ids(client, found.experiment_id)
    if not run_ids:
        return found.experiment_id, None, 0, data and data.experiment_id
    text = json.dumps(view_state(run_ids), sort_keys=True)
    key = VIEW_KEY_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]
    for old in [t for t in found.tags if t.startswith(VIEW_TAG + VIEW_KEY_PREFIX) and t != VIEW_TAG + key]:
        client.delete_experiment_tag(found.experiment_id, old)  # views of older comparisons
    if found.tags.get(VIEW_TAG + key) != text:
        client.set_experiment_tag(found.experiment_id, VIEW_TAG + key, text)
    return found.experiment_id, key, len(run_ids), data and data.experiment_id


def runs_url(base: str, experiment_id: str, view_key: str | None = None) -> str:
    """The experiment's runs page in the model-training view, with the shared view if given."""
    query = "workflowType=machine_learning" + (f"&viewStateShareKey={view_key}" if view_key else "")
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def start_server(uri: str, port: int) -> subprocess.Popen:
    """``mlflow ui`` on ``uri`` at 127.0.0.1:``port`` in its own process group (stopped as one)."""
    from pipeline.io import find_repo_root

    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", HOST,
               "--port", str(port), "--workers", "1"]
    log = tempfile.TemporaryFile("w+")  # not a pipe: a long session's access log would fill it and block
    server = subprocess.Popen(command, cwd=find_repo_root(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                              text=True, start_new_session=True)
    server.log = log
    return server


def _exited(server: subprocess.Popen) -> DataError:
    """The error for a server that stopped by itself: its exit code and last log line."""
    server.log.seek(0)
    lines = [ln for ln in server.log.read().splitlines() if ln.strip()]
    return DataError(f"mlflow ui exited with code {server.returncode}: {(lines or ['no output'])[-1][:200]}")


def wait_ready(server: subprocess.Popen, base: str, timeout: float = READY_TIMEOUT_S) -> None:
    """Until ``/health`` answers; one line with the server's last words if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise _exited(server)
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise DataError(f"mlflow ui did not answer at {base} within {timeout:.0f} s")


def stop(server: subprocess.Popen) -> None:
    """Stop the server and every process it started: its own process group, then any of its
    descendants that moved to another group."""
    import psutil

    try:
        descendants = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    if server.poll() is None:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        except ProcessLookupError:
            pass
    for process in descendants:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(descendants, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


class Stopped(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP while ``cvd ui`` serves: a KeyboardInterrupt, as Ctrl-C raises."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _ignore_stop_signals() -> None:
    """A second signal must not cut the cleanup short."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _raise_stopped(signum: int, frame: Any) -> None:
    _ignore_stop_signals()
    raise Stopped(signum)


@contextlib.contextmanager
def _stop_signals_raise() -> Any:
    """Inside the block the first of :data:`STOP_SIGNALS` raises :class:`Stopped` and the rest are
    ignored; the caller's handlers come back after it. Only the main thread can handle signals:
    elsewhere the caller's handlers apply."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {signum: signal.signal(signum, _raise_stopped) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def run(experiment: str, port: int | None = None, echo=print) -> None:
    """Start the UI, print the links, serve until Ctrl-C (or, on a tracking server, just print)."""
    from pipeline.tracking import tracking_uri

    uri = tracking_uri()
    remote = uri.startswith(("http://", "https://"))
    if not remote:
        check_store(uri)
        if port is not None:
            check_port(port)
    experiment_id, view_key, n_runs, data_id = prepare_views(experiment)
    base = uri if remote else f"http://{HOST}:{port or free_port()}"

    def links() -> None:
        which = f"the {n_runs} model runs of the latest comparison" if view_key else "no model runs yet"
        echo(f"models ({which}): {runs_url(base, experiment_id, view_key)}")
        echo(f"all runs of {experiment!r}: {runs_url(base, experiment_id)}")
        if data_id:
            echo(f"prepare and features runs: {runs_url(base, data_id)}")

    if remote:
        echo(f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) serves the UI itself:")
        links()
        return
    server = None
    with _stop_signals_raise():
        try:
            server = start_server(uri, int(base.rsplit(":", 1)[1]))
            echo(f"starting mlflow ui on {uri} ...")
            wait_ready(server, base)
            links()
            echo("Ctrl-C stops it")
            server.wait()
            raise _exited(server)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP (Stopped)
            echo("stopped mlflow ui")
        finally:
            if server is not None:
                if threading.current_thread() is threading.main_thread():
                    _ignore_stop_signals()
                stop(server)
                server.log.close()

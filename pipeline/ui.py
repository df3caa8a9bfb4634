"""``cvd ui``: the MLflow UI on the project's tracking store, opened on the model comparison.

It starts ``mlflow ui`` on :func:`pipeline.store.tracking_uri` (``MLFLOW_TRACKING_URI``
wins; a tracking *server* there already is a UI, so nothing is started) on 127.0.0.1 and
prints the link that lands on the experiment's runs in MLflow 3's model-training view
(``workflowType=machine_learning``: without it MLflow 3.17 opens the GenAI overview).

The link's shared view of the model runs is built by :mod:`pipeline.ui_views`.

The server stops with ``cvd ui``: Ctrl-C (SIGINT), SIGTERM (``kill``, a supervisor) and SIGHUP
(a closed terminal) all stop its process group and any process of it that left the group,
print ``stopped mlflow ui`` and exit with code 0.
"""
from __future__ import annotations

import contextlib
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
from pipeline.ui_views import prepare_views, runs_url

HOST = "127.0.0.1"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill or a supervisor, a closed terminal
JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
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


def start_server(uri: str, port: int) -> subprocess.Popen:
    """``mlflow ui`` on ``uri`` at 127.0.0.1:``port`` in its own process group (stopped as one)."""
    from pipeline.layout import find_repo_root

    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", HOST,
               "--port", str(port), "--workers", "1"]
    # MLflow's job runner (seven huey consumers for GenAI jobs) has nothing to do for these runs:
    # the UI starts as two processes instead of ten, unless the user's environment asks for it
    env = {JOB_EXECUTION: "false", **os.environ}
    log = tempfile.TemporaryFile("w+")  # not a pipe: a long session's access log would fill it and block
    server = subprocess.Popen(command, cwd=find_repo_root(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                              text=True, start_new_session=True, env=env)
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
    from pipeline.store import tracking_uri

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

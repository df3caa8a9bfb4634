"""`cvd ui` stops the `mlflow ui` server it started -- and every process of that server -- on SIGTERM
(`kill`, a supervisor) and SIGHUP (a closed terminal) exactly as on Ctrl-C.

Each case starts a real `cvd ui` on a small SQLite store, records the server's processes with
psutil once it answers, sends the signal to `cvd ui` alone (the server runs in its own process
group, so only `cvd ui` can stop it) and checks: exit code 0 and "stopped mlflow ui" as for
Ctrl-C, the port refuses connections within 10 s, no recorded process and no process of the
server's group is left. `cvd ui` starts no MLflow job runner (its huey consumers serve GenAI jobs)
unless the user's environment asks for one: the SIGHUP case does, so that the server it stops has
its many processes (ten with MLflow 3.17).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psutil
import pytest

from helpers import REPO_ROOT, free_port, new_mlflow_store, refuses_connections, venv_env, wait_until_answering
from pipeline import ui


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


@pytest.fixture
def store(tmp_path):
    """A SQLite store holding the params.yaml experiment, as `cvd ui` requires."""
    import mlflow

    uri = new_mlflow_store(tmp_path)
    mlflow.MlflowClient(tracking_uri=uri).create_experiment("classic-vs-deep")
    return uri


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "job_execution"), [(signal.SIGTERM, None), (signal.SIGHUP, "true")],
                         ids=["SIGTERM", "SIGHUP-with-job-runner"])
def test_signal_stops_the_server_and_all_its_processes(tmp_path, store, signum, job_execution):
    port = free_port()
    env = venv_env({"MLFLOW_TRACKING_URI": store, "PYTHONPATH": str(REPO_ROOT)})
    env.pop(ui.JOB_EXECUTION, None)
    if job_execution:
        env[ui.JOB_EXECUTION] = job_execution
    cvd = subprocess.Popen(["cvd", "ui", "--params", str(REPO_ROOT / "params.yaml"), "--port", str(port)],
                           cwd=tmp_path, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server_groups: set[int] = set()
    try:
        wait_until_answering(cvd, f"http://127.0.0.1:{port}/health", "cvd ui", ui.READY_TIMEOUT_S + 30)
        started = psutil.Process(cvd.pid).children(recursive=True)
        server_groups = {os.getpgid(p.pid) for p in started} - {os.getpgid(cvd.pid)}
        assert started and len(server_groups) == 1, "expected the server in a process group of its own"
        job_runners = [p for p in started if "mlflow.server.jobs" in " ".join(p.cmdline())]  # its runner
        assert bool(job_runners) == bool(job_execution), [p.cmdline()[:4] for p in started]

        cvd.send_signal(signum)
        out, err = cvd.communicate(timeout=90)

        assert cvd.returncode == 0, err
        assert "stopped mlflow ui" in out and "Traceback" not in err, (out, err)
        assert refuses_connections(port), f"something still listens on {port}"
        _, alive = psutil.wait_procs(started, timeout=10)
        assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}"
        assert not group_members(server_groups.pop())
    finally:
        if cvd.poll() is None:
            cvd.kill()
            cvd.communicate(timeout=30)
        for pgid in server_groups:  # a failed case must not leave a server behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


def test_stop_signals_are_restored_after_serving():
    """`cvd ui` run in-process (tests, notebooks) hands the caller's handlers back."""
    before = {s: signal.getsignal(s) for s in ui.STOP_SIGNALS}
    with pytest.raises(ui.Stopped):
        with ui._stop_signals_raise():
            assert all(signal.getsignal(s) is ui._raise_stopped for s in ui.STOP_SIGNALS)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at once; this only bounds the wait
    assert {s: signal.getsignal(s) for s in ui.STOP_SIGNALS} == before

"""MLflow runs left RUNNING by a killed stage are marked KILLED by the next stage (pipeline/stale_runs.py);
tests/test_faults.py kills real stages."""
from __future__ import annotations

import subprocess
import sys

import psutil

from pipeline.store import end_stale_runs


def _dead_process() -> tuple[int, int]:
    """``(pid, start time)`` of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = int(psutil.Process(proc.pid).create_time())
    proc.kill()
    proc.wait()
    return proc.pid, started


def test_runs_of_a_process_that_is_gone_are_marked_killed(mlflow_tmp, capsys):
    import mlflow

    uri = mlflow.get_tracking_uri()
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("x")
    pid, started = _dead_process()
    me = psutil.Process()

    def run(name: str, **tags: str) -> str:
        return client.create_run(experiment, run_name=name, tags=tags).info.run_id

    killed = run("killed", pipeline_run=f"cvd-{pid}-{started}")
    seed = run("killed-seed1", **{"mlflow.parentRunId": killed})  # an extra seed's run: no pipeline_run
    reused = run("pid reused", pipeline_run=f"dvc-{me.pid}-{int(me.create_time()) - 100}")
    live = run("live", pipeline_run=f"dvc-{me.pid}-{int(me.create_time())}")
    named = run("named", pipeline_run="test-pipeline")  # CVD_PIPELINE_RUN: no process to ask
    finished = run("finished", pipeline_run=f"cvd-{pid}-{started}")
    client.set_terminated(finished, "FINISHED")

    assert sorted(end_stale_runs(uri)) == sorted([killed, seed, reused])
    status = {run_id: client.get_run(run_id).info.status for run_id in (killed, seed, reused, live, named, finished)}
    assert status == {killed: "KILLED", seed: "KILLED", reused: "KILLED", live: "RUNNING", named: "RUNNING",
                      finished: "FINISHED"}
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: marked KILLED 3 MLflow run(s) left RUNNING by a killed stage: killed, "
                        "killed-seed1, pid reused"]
    assert end_stale_runs(uri) == []  # nothing left to mark


def test_a_tracking_servers_runs_are_left_alone():
    """Other machines log to a server: their pids mean nothing here (and nothing is contacted)."""
    assert end_stale_runs("http://127.0.0.1:9") == []

"""The start of the MLflow UI that ``cvd ui`` runs: without MLflow's job runner (what ``cvd ui``
does) against with it (the baseline: plain ``mlflow ui``, whose job runner starts seven
``huey`` consumers for GenAI jobs).

    python benchmarks/bench_ui_start.py [--settle 8]

Each variant starts the server ``cvd ui`` starts (:func:`pipeline.ui.start_server`:
``mlflow ui --workers 1``) on a new, empty SQLite store, waits for
``/health``, lets it settle ``--settle`` seconds (the consumers start after the UI answers),
then sums the user + system CPU seconds of its processes and stops it.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import psutil

from pipeline import ui


def start(job_execution: str, settle: float) -> tuple[int, float, float]:
    """(processes, seconds until /health answers, CPU seconds of all its processes) of the server
    ``cvd ui`` starts (:func:`pipeline.ui.start_server`), with the job runner set as given."""
    os.environ[ui.JOB_EXECUTION] = job_execution  # the user's setting wins over cvd ui's default
    with tempfile.TemporaryDirectory() as tmp:
        port = ui.free_port()
        began = time.perf_counter()
        server = ui.start_server(f"sqlite:///{tmp}/mlflow.db", port)
        try:
            ui.wait_ready(server, f"http://{ui.HOST}:{port}")
            ready = time.perf_counter() - began
            time.sleep(settle)
            processes = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
            cpu = sum(p.cpu_times().user + p.cpu_times().system for p in processes)
            return len(processes), ready, cpu
        finally:
            ui.stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settle", type=float, default=8.0)
    args = parser.parse_args()
    print(f"{'mlflow ui':<34} {'processes':>9} {'ready s':>8} {'CPU s':>6}")
    rows = {}
    for name, value in (("with the job runner (baseline)", "true"), ("without (cvd ui)", "false")):
        rows[name] = start(value, args.settle)
        n, ready, cpu = rows[name]
        print(f"{name:<34} {n:>9} {ready:>8.1f} {cpu:>6.1f}")
    base, new = (rows[name][2] for name in rows)
    print(f"CPU ratio baseline / cvd ui: {base / new:.1f}x")


if __name__ == "__main__":
    main()

"""The session's one real ``dvc repro`` of a small run (conftest ``small_run``), built in the
background while the unit tests run.

Plain Python (no pytest). The first test process whose collected tests need ``small_run``
calls :func:`start`: it claims ``<session dir>/small_run`` (``mkdir`` is atomic, so with
pytest-xdist exactly one worker builds) and runs this file as a script in a new process
group. Every process then :func:`wait`\\ s for ``status`` beside the repository: ``ok`` or the
reason it failed (``build.log`` holds the details). :func:`stop` ends a build still running
when the session ends early.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from helpers import (SMALL_RUN_ARCHS, SMALL_RUN_CLASSIFIERS, SMALL_RUN_CURVE_FRACTIONS, SMALL_RUN_EPOCHS,
                     SMALL_RUN_FEATURES, SMALL_RUN_LIMIT_PER_CLASS, venv_env, warm_env)
from worktree import copy_repo

REPRO_TIMEOUT_S = 900
WAIT_TIMEOUT_S = REPRO_TIMEOUT_S + 300  # the build's own limit, plus copying and a loaded machine


def build(repo: Path) -> None:
    """Copy the project to ``repo``, commit the small params, run ``dvc repro``; what it printed
    goes to ``repro.log`` beside ``repo``. Raises RuntimeError when the repro fails."""
    copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["limit_per_class"] = SMALL_RUN_LIMIT_PER_CLASS
    params["evaluation"]["bootstrap_resamples"] = 200
    params["features"]["names"] = SMALL_RUN_FEATURES
    params["features"]["n_jobs"] = 1
    params["classical"]["classifiers"] = SMALL_RUN_CLASSIFIERS
    params["cnn"]["architectures"] = SMALL_RUN_ARCHS
    params["cnn"]["epochs"] = SMALL_RUN_EPOCHS  # the global key: lenet5 has no epochs override of its own
    params["curve"]["fractions"] = SMALL_RUN_CURVE_FRACTIONS
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # The committed dvc.lock records the default run's 27 stages, 14 of which the small run does not
    # have. DVC re-reads and rewrites the whole lock after every stage, so each test that runs stages
    # in a copy would pay for them at every stage: the small run starts without it (as a new project).
    (repo / "dvc.lock").unlink()
    env = warm_env({"PYTHONPATH": str(repo)})  # its stages in forks of the warm interpreter once it is up
    subprocess.run(["git", "commit", "-qam", "small params"], cwd=repo, check=True, env=env)
    out = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True,
                         timeout=REPRO_TIMEOUT_S)
    (repo.parent / "repro.log").write_text(out.stdout)  # what the fresh run printed, for test_e2e
    if out.returncode != 0:
        raise RuntimeError(f"dvc repro failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def start(session_dir: Path) -> bool:
    """Start the build in the background unless a process of this session already has; True if
    this call started it."""
    home = session_dir / "small_run"
    try:
        home.mkdir(parents=True)
    except FileExistsError:
        return False
    with open(home / "build.log", "wb") as log:
        process = subprocess.Popen([sys.executable, __file__, str(home / "repo")], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env=venv_env())
    (home / "pid").write_text(str(process.pid))
    return True


def wait(session_dir: Path, timeout: float = WAIT_TIMEOUT_S) -> Path:
    """The finished repository, once the build says ``ok``; RuntimeError with its reason otherwise."""
    home = session_dir / "small_run"
    status = home / "status"
    deadline = time.monotonic() + timeout
    while not status.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the small run was not ready after {timeout:.0f} s; see {home / 'build.log'}")
        time.sleep(0.5)
    text = status.read_text()
    if text != "ok":
        raise RuntimeError(f"building the small run failed ({home / 'build.log'}):\n{text}")
    return home / "repo"


def stop(session_dir: Path) -> None:
    """End a build still running (its whole process group: dvc and the stage it runs)."""
    home = session_dir / "small_run"
    if (home / "pid").exists() and not (home / "status").exists():
        try:
            os.killpg(int((home / "pid").read_text()), signal.SIGTERM)
        except (ProcessLookupError, PermissionError, ValueError):
            pass


def _main(repo: Path) -> None:
    status = repo.parent / "status"
    try:
        build(repo)
        message = "ok"
    except Exception as exc:  # noqa: BLE001 -- every failure becomes the waiting tests' message
        message = f"{type(exc).__name__}: {exc}"
    tmp = status.with_suffix(".tmp")
    tmp.write_text(message)
    tmp.rename(status)


if __name__ == "__main__":
    _main(Path(sys.argv[1]))

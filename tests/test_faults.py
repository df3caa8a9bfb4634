"""Faults: every stage kind killed with SIGKILL at a random moment, a full disk, a read-only
output folder and two ``dvc repro`` at once, in a copy of the finished small run (conftest
``small_run``).

A kill trial starts ``cvd <stage>`` in the copy (a fork of one warm process that has done the
imports: tests/fork_runner.py, so the kill lands in the stage's own work), SIGKILLs it once it has
used an amount of CPU time drawn from a seeded generator within the stage's last measured CPU
time (CPU, not wall time: other tests share the machine), then reruns
the stage and checks: it exits 0; the output folders hold exactly the small run's files (no
temporary or partial file); no MLflow run is left RUNNING (the rerun marks the killed one
KILLED: pipeline/store.py); and every output equals the uninterrupted run's (the small
run's), timing fields of the metrics JSON aside and zip archives (.npz, .skops) compared member
by member (their entries carry the time they were written and memory addresses).
The README's "Reliability" section quotes the counts (tests/reliability_counts.py), checked by
:func:`test_readme_quotes_the_counts`.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fork_runner import ForkRunner
from helpers import copy_finished_repo, venv_env

# its module-scoped fixtures (one copy of the run, one warm process) keep it on one xdist worker

OUTPUT_FOLDERS = ("data", "artifacts", "metrics", "plots", "predictions", "reports")
# what varies run to run in the metrics JSON (pipeline/results.py: the .run.json holds these, and a
# CNN's new MLflow run) and a CNN's history CSV
RUN_KEYS = {"fit_seconds", "transform_seconds", "images_per_s", "predict_images_per_s", "predict_seconds",
            "epoch_seconds", "mlflow_run_id"}
ADDRESS = re.compile(r"\d{12,}")
ADDRESS_BYTES = re.compile(rb"\d{12,}")
# kind: (cvd arguments, kill trials, CPU seconds of one warm run measured here): the first kill's
# moment is drawn below those CPU seconds, each later one below the previous rerun's CPU time
TRIALS = {
    "compare": (["compare"], 1, 4.5),
    "explain": (["explain"], 1, 14.5),
    "prepare": (["prepare"], 6, 1.3),
    "features": (["features", "--name", "raw"], 5, 1.3),
    "train_classical": (["train-classical", "--feature", "raw", "--classifier", "knn"], 6, 0.3),
    "train_cnn": (["train-cnn", "--arch", "lenet5"], 1, 6.8),
}
SEED = 20261205
PRELOAD = ("mlflow", "sklearn", "skops.io", "matplotlib.pyplot", "cv2", "skimage", "keras",
           "pipeline.prepare", "pipeline.features", "pipeline.train_classical", "pipeline.train_cnn",
           "pipeline.compare", "pipeline.explain")


def _normalised(path: Path):
    """What must not change from run to run: a zip's members (less keras' ``metadata.json``,
    its save date) with memory addresses (skops' member names, keras' ``shared_object_id``)
    blanked; JSON less :data:`RUN_KEYS`; CSV less its ``epoch_seconds`` column; else the bytes."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return sorted((ADDRESS.sub("#", info.filename), ADDRESS_BYTES.sub(b"#", archive.read(info)))
                          for info in archive.infolist() if info.filename != "metadata.json")
    if path.suffix == ".json":
        def strip(value):
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items() if k not in RUN_KEYS}
            return value
        return strip(json.loads(path.read_text()))
    if path.suffix == ".csv":
        rows = list(csv.reader(path.read_text().splitlines()))
        keep = [i for i, name in enumerate(rows[0] if rows else []) if name not in RUN_KEYS]
        return [[row[i] for i in keep] for row in rows]
    return path.read_bytes()


def outputs(repo: Path) -> dict[str, Path]:
    """Every file under the output folders, by path relative to ``repo``."""
    return {p.relative_to(repo).as_posix(): p for folder in OUTPUT_FOLDERS
            for p in sorted((repo / folder).rglob("*")) if p.is_file()}


def running_runs(repo: Path) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")
    return [f"{r.info.run_name} ({r.data.tags.get('stage')})" for r in runs]


@pytest.fixture(scope="module")
def workspace(small_run, tmp_path_factory) -> Path:
    return copy_finished_repo(small_run, tmp_path_factory.mktemp("faults") / "repo")


@pytest.fixture(scope="module")
def runner(workspace):
    runner = ForkRunner(venv_env({"PYTHONPATH": str(workspace)}), PRELOAD)
    yield runner
    runner.close()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("kind", list(TRIALS))
def test_killed_stage_reruns_to_the_uninterrupted_outputs(kind, small_run, workspace, runner):
    args, trials, seconds = TRIALS[kind]
    rng = np.random.default_rng([SEED, list(TRIALS).index(kind)])  # the same kill moments however tests are picked
    log = workspace.parent / f"{kind}.log"
    expected = outputs(small_run)
    for trial in range(trials):
        for _ in range(5):  # a run that ends before its kill is measured, and the kill drawn again
            killed = runner.run(workspace, args, log, kill_after_cpu=float(rng.uniform(0.02, 0.95)) * seconds)
            if killed["signal"] is not None:
                break
            seconds = killed["cpu"]
        assert killed["signal"] == 9, f"{kind}: no run was killed in 5 tries ({killed})"
        rerun = runner.run(workspace, args, log)
        assert rerun["rc"] == 0, f"{kind} trial {trial}: the rerun failed:\n{log.read_text()[-2000:]}"
        seconds = rerun["cpu"]
        print(f"{kind} trial {trial}: killed after {killed['cpu']} s CPU, rerun {rerun['seconds']} s "
              f"({rerun['cpu']} s CPU)")
        found = outputs(workspace)
        assert sorted(found) == sorted(expected), f"{kind} trial {trial}: files left or missing"
        assert running_runs(workspace) == [], f"{kind} trial {trial}: MLflow runs left RUNNING"
    differ = [rel for rel, path in found.items()
              if _normalised(path) != _normalised(expected[rel])]
    assert differ == [], f"{kind}: outputs differ from the uninterrupted run's: {differ[:10]}"


def _mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(done.stderr or done.stdout).strip()[:120]}): needs root")


@pytest.fixture
def tmpfs(tmp_path):
    """A folder to mount a small tmpfs on, unmounted afterwards."""
    folder = tmp_path / "mnt"
    yield folder
    if os.path.ismount(folder):
        subprocess.run(["umount", "-l", str(folder)], check=True)


@contextlib.contextmanager
def _output_on_tmpfs(workspace: Path, rel: str, tmpfs: Path, size: str):
    """The output folder ``rel`` moved onto a new tmpfs of ``size`` (a link to it in its place,
    its files copied there); yields those files' contents; puts the folder back afterwards."""
    _mount_tmpfs(tmpfs, f"size={size}")
    folder, saved = workspace / rel, workspace.parent / f"saved-{Path(rel).name}"
    folder.rename(saved)
    folder.symlink_to(tmpfs, target_is_directory=True)
    try:
        for path in saved.iterdir():
            (tmpfs / path.name).write_bytes(path.read_bytes())
        yield {p.name: p.read_bytes() for p in tmpfs.iterdir()}
    finally:
        folder.unlink()
        saved.rename(folder)


def _one_line(runner: ForkRunner, workspace: Path, args: list[str], name: str) -> list[str]:
    """Run ``cvd ARGS``: it must exit 2; returns what it printed, by line."""
    log = workspace.parent / f"{name}.log"
    log.unlink(missing_ok=True)
    result = runner.run(workspace, args, log)
    assert result["rc"] == 2, log.read_text()
    return log.read_text().splitlines()


@pytest.mark.integration
@pytest.mark.slow
def test_full_disk_is_one_line_and_leaves_the_finished_outputs(workspace, runner, tmpfs):
    with _output_on_tmpfs(workspace, "data/prepared", tmpfs, "1m") as before:
        with open(tmpfs / "filler", "wb", buffering=0) as fh:  # fill the disk up to its last bytes
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 4096)
        lines = _one_line(runner, workspace, ["prepare"], "full-disk")
        assert lines == ["error: data/prepared/split.npz: cannot write (No space left on device)"]
        assert sorted(p.name for p in tmpfs.iterdir()) == sorted([*before, "filler"])  # nothing partial
        assert {name: (tmpfs / name).read_bytes() for name in before} == before  # the finished outputs kept


@pytest.mark.integration
@pytest.mark.slow
def test_read_only_output_folder_is_one_line(workspace, runner, tmpfs):
    with _output_on_tmpfs(workspace, "data/features", tmpfs, "16m") as before:
        subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
        lines = _one_line(runner, workspace, ["features", "--name", "raw"], "read-only")
        assert lines == ["error: data/features/raw.npz: cannot write (Read-only file system)"]
        assert {p.name: p.read_bytes() for p in tmpfs.iterdir()} == before


@pytest.mark.integration
@pytest.mark.slow
def test_two_dvc_repro_at_once_the_second_stops_at_the_lock(small_run, tmp_path):
    """The second ``dvc repro`` fails with DVC's lock message, naming the first; the first finishes; the stage's
    outputs are those its dvc.lock records, equal to the small run's."""
    repo = copy_finished_repo(small_run, tmp_path / "repo")
    env = venv_env({"PYTHONPATH": str(repo)})
    stage = ["features@raw"]
    first = subprocess.Popen(["dvc", "repro", "--force", "--single-item", *stage], cwd=repo, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    head = [first.stdout.readline()]
    while head[-1] and not head[-1].startswith("Running stage"):
        head.append(first.stdout.readline())
    second = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    rest = first.communicate(timeout=300)[0]
    assert first.returncode == 0, "".join(head) + rest
    assert second.returncode != 0
    # DVC locks the outputs of a running stage: the second names the first
    assert "is busy, it is being blocked by" in second.stderr and f"(PID {first.pid})" in second.stderr, second.stderr
    status = subprocess.run(["dvc", "status", "--quiet", *stage], cwd=repo, env=env, capture_output=True, text=True)
    assert status.returncode == 0, status.stdout + status.stderr
    found, expected = outputs(repo), outputs(small_run)
    assert sorted(found) == sorted(expected)
    assert [rel for rel, path in found.items() if _normalised(path) != _normalised(expected[rel])] == []


def test_readme_quotes_the_counts():
    """README's "Reliability" numbers are the tests' own (tests/reliability_counts.py)."""
    from reliability_counts import lines

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert [line for line in lines() if line not in readme] == []

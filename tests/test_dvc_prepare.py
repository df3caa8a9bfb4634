"""Integration: real `dvc repro prepare` in a temporary copy of the repository."""
from __future__ import annotations

import json
import subprocess

import pytest

from helpers import copy_repo, venv_env

pytestmark = pytest.mark.integration


def test_dvc_repro_prepare(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    env = venv_env()
    out = subprocess.run(["dvc", "repro", "prepare"], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    manifest = json.loads((repo / "data/prepared/manifest.json").read_text())
    assert manifest["counts"] == {"train": 1221, "val": 216, "test": 360}
    assert (repo / "data/prepared/split.npz").is_file()
    assert "prepare" in (repo / "dvc.lock").read_text()
    # prepare imports no MLflow (compare logs its run, pipeline/data_runs.py): no store yet, none in the lock
    assert not (repo / "mlflow.db").exists()
    assert "mlflow.db" not in (repo / "dvc.lock").read_text()
    again = subprocess.run(["dvc", "repro", "prepare"], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0
    assert "didn't change" in again.stdout or "is cached" in again.stdout or "up to date" in again.stdout

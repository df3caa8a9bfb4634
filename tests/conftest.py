"""Shared fixtures (plain helpers live in helpers.py). Real datasets live in ../shared/datasets
(read-only); tests that need them skip without them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import (SHARED_DATASETS, SMALL_RUN_ARCHS, SMALL_RUN_CLASSIFIERS, SMALL_RUN_CURVE_FRACTIONS,
                     SMALL_RUN_EPOCHS, SMALL_RUN_FEATURES, SMALL_RUN_LIMIT_PER_CLASS, copy_repo, venv_env)
from pipeline.datasets import read_idx


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Path to ../shared/datasets, or skip the test when it is absent."""
    if not (SHARED_DATASETS / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real datasets not found under {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def fashion_test_images(shared_datasets: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 Fashion-MNIST test images (uint8, N×28×28) and labels."""
    d = shared_datasets / "fashion-mnist"
    return read_idx(d / "t10k-images-idx3-ubyte.gz", 3), read_idx(d / "t10k-labels-idx1-ubyte.gz", 1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def mlflow_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working directory, with its own SQLite MLflow store."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return tmp_path


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project after ONE real ``dvc repro`` (the session's only full one) on 30 digits
    per class: ``raw`` and ``hog`` features x ``logreg`` and ``knn``, ``lenet5`` (10 epochs), compare,
    the learning curve at 50 and 100 % and explain, with its MLflow runs in the copy's own
    ``mlflow.db``; what ``dvc repro`` printed is in ``repro.log`` beside it. The small params are
    committed. Tests only read it; a test that changes the repository works on
    :func:`helpers.copy_finished_repo` of it. ~2 min; slow tests.
    ``CVD_TEST_SMALL_RUN=<its repo folder>`` reuses one left by an earlier ``--basetemp`` session."""
    import os
    import subprocess

    import yaml

    if os.environ.get("CVD_TEST_SMALL_RUN"):  # a finished one from an earlier session, while editing tests
        return Path(os.environ["CVD_TEST_SMALL_RUN"])
    repo = copy_repo(tmp_path_factory.mktemp("small_run") / "repo")
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
    env = venv_env({"PYTHONPATH": str(repo)})
    subprocess.run(["git", "commit", "-qam", "small params"], cwd=repo, check=True, env=env)
    out = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"dvc repro failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    (repo.parent / "repro.log").write_text(out.stdout)  # what the fresh run printed, for test_e2e
    return repo

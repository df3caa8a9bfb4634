"""Shared fixtures. Real datasets live in ../shared/datasets (read-only); tests skip without them."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from worktree import copy_repo  # noqa: F401  (re-exported: tests import it from conftest)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("CVD_SHARED_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))


def read_idx_gz(path: Path) -> np.ndarray:
    """Minimal IDX reader for tests (independent of the product's reader)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


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
    return read_idx_gz(d / "t10k-images-idx3-ubyte.gz"), read_idx_gz(d / "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def venv_env(extra: dict | None = None) -> dict:
    """Environment whose PATH finds this interpreter's `cvd` and `dvc` first."""
    import sys

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@example.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@example.invalid")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(extra or {})
    return env

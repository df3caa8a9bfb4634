"""Shared fixtures (plain helpers live in helpers.py). Real datasets live in ../shared/datasets
(read-only); tests that need them skip without them."""
from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import small_run as small_run_build
import warm_cvd
from helpers import SESSION_DIR_ENV, SHARED_DATASETS, new_mlflow_store, session_dir
from pipeline.datasets import read_idx

_OWN_SESSION_DIR: Path | None = None  # made by this process, removed when the session ends
_OWNS_SESSION = False  # this process made the session folder: it alone stops the build at the end


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
    """``tmp_path`` as the working directory, with its own new SQLite MLflow store."""
    import mlflow

    uri = new_mlflow_store(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return tmp_path


@pytest.fixture(scope="session")
def small_run() -> Path:
    """A copy of the project after ONE real ``dvc repro`` (the session's only full one) on 30 digits
    per class: ``raw`` and ``hog`` features x ``logreg`` and ``knn``, ``lenet5`` (10 epochs), compare,
    the learning curve at 50 and 100 % and explain, with its MLflow runs in the copy's own
    ``mlflow.db``; what ``dvc repro`` printed is in ``repro.log`` beside it. The small params are
    committed. Tests only read it; a test that changes the repository works on
    :func:`helpers.copy_finished_repo` of it.

    It is built in the background from the moment the tests that need it are collected
    (``small_run.py``; one build for all pytest-xdist workers) and those tests run last, so the
    others use the wait. ``CVD_TEST_SMALL_RUN=<its repo folder>`` reuses one left by an earlier
    session (with ``--basetemp``, in ``<basetemp>-session/small_run/repo``)."""
    if os.environ.get("CVD_TEST_SMALL_RUN"):  # a finished one from an earlier session, while editing tests
        return Path(os.environ["CVD_TEST_SMALL_RUN"])
    small_run_build.start(session_dir())  # only if no process has: a test selected by name at run time
    try:
        return small_run_build.wait(session_dir())
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


def _needs_small_run(item: pytest.Item) -> bool:
    return "small_run" in getattr(item, "fixturenames", ())


def pytest_configure(config: pytest.Config) -> None:
    """The first process (the xdist controller, or the only one) makes the session folder its
    workers share: they inherit the environment variable."""
    global _OWN_SESSION_DIR, _OWNS_SESSION
    # xdist workers and a pytest run by a test (e.g. --collect-only) inherit the folder
    if hasattr(config, "workerinput") or os.environ.get(SESSION_DIR_ENV):
        return
    _OWNS_SESSION = True
    if config.option.basetemp:  # kept for inspection, like the basetemp itself
        folder = Path(f"{Path(config.option.basetemp).resolve()}-session")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    else:
        folder = _OWN_SESSION_DIR = Path(tempfile.mkdtemp(prefix="cvd-tests-"))
    os.environ[SESSION_DIR_ENV] = str(folder)


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: only the tests that will run count
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the small run's build as soon as a collected test needs it, and run those tests last,
    the ``heavy`` ones first within each group: the longest jobs first, so that both xdist
    workers finish together instead of one running a long test alone at the end (a stable
    sort: otherwise each group keeps its order, identical in every xdist worker)."""
    if config.option.collectonly or not any(map(_needs_small_run, items)):
        return
    warm_cvd.start(session_dir())  # for the build and the tests that run stages (helpers.warm_env)
    if not os.environ.get("CVD_TEST_SMALL_RUN"):
        small_run_build.start(session_dir())
    items.sort(key=lambda item: (_needs_small_run(item), item.get_closest_marker("heavy") is None))


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _OWNS_SESSION:  # a worker, or a pytest a test ran: the session's build is not theirs to stop
        return
    small_run_build.stop(session_dir())
    warm_cvd.stop(session_dir())
    if _OWN_SESSION_DIR is not None:
        shutil.rmtree(_OWN_SESSION_DIR, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _shares_module_fixtures(path: Path) -> bool:
    """True when the test module defines a module-scoped fixture (e.g. a repository its tests
    share): pytest-xdist must then run the whole module on one worker, to make it once."""
    return path.suffix == ".py" and bool(re.search(r'@pytest\.fixture\(scope="module"', path.read_text()))


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``make test``'s scheduling: every test is its own unit of work (spread over the workers as
    they free up, in collection order, so the small run's tests come last), except a module with
    module-scoped fixtures, which is one unit."""
    from xdist.scheduler import LoadScopeScheduling

    class ModulesSharingFixtures(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if _shares_module_fixtures(config.rootpath / module) else nodeid

    config.option.loadscopereorder = False  # keep the collection order: the small run's tests last
    return ModulesSharingFixtures(config, log)

"""Plain helpers shared by the test modules (fixtures live in conftest.py).

Test modules import these from here, never from one another or from conftest.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

from worktree import copy_finished_repo, copy_repo  # noqa: F401  (re-exported for the tests)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("CVD_SHARED_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))

# The session's one real `dvc repro` (conftest ``small_run``): two feature sets x two classifiers, so
# an experiment on one classifier visibly leaves the other's stages alone, and LeNet-5, with epochs
# enough (~0.5 s each on 210 training images) to learn the digits well past chance, yet below the
# classical models on validation (the registered champion is classical: tests/test_serve.py)
SMALL_RUN_FEATURES = ["raw", "hog"]
SMALL_RUN_CLASSIFIERS = ["logreg", "knn"]
SMALL_RUN_ARCHS = ["lenet5"]
SMALL_RUN_LIMIT_PER_CLASS = 30
SMALL_RUN_EPOCHS = 10
SMALL_RUN_CURVE_FRACTIONS = [0.5, 1.0]  # one retrained point, one reusing the trained models


SESSION_DIR_ENV = "CVD_TEST_SESSION_DIR"


def session_dir() -> Path:
    """A folder shared by every process of this test session (all pytest-xdist workers), for what
    is made once per session: conftest sets it up and removes it."""
    return Path(os.environ[SESSION_DIR_ENV])


@functools.cache
def _made_mlflow_store() -> Path:
    import mlflow

    path = Path(tempfile.mkdtemp(prefix="new-mlflow-store-", dir=session_dir())) / "mlflow.db"
    with contextlib.chdir(path.parent):  # the Default experiment's artifacts: ./mlruns of the working directory
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def new_mlflow_store(folder: Path) -> str:
    """A new SQLite MLflow store at ``folder/mlflow.db``; returns its URI. It is a copy of one made
    once per process: MLflow migrates every new store's schema, always to the same file, and that
    took about a second of each test that made one. (Its Default experiment keeps its artifacts in
    the first store's folder; the project logs to experiments of its own.)"""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_made_mlflow_store(), folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


def venv_env(extra: dict | None = None) -> dict:
    """Environment whose PATH finds this interpreter's `cvd` and `dvc` first."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@example.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@example.invalid")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(extra or {})
    return env


def warm_env(extra: dict | None = None) -> dict:
    """:func:`venv_env` whose ``cvd`` runs in a fork of the session's warm interpreter (the DVC
    stages skip seconds of library imports each; tests/warm_cvd.py), or is the real one where that
    is not up. For tests that run many stages and do not check what a stage prints while loading
    its libraries. ``CVD_TEST_COLD=1`` runs the real one everywhere (to time or rule out the server)."""
    import warm_cvd

    if os.environ.get("CVD_TEST_COLD") == "1":
        return venv_env(extra)
    return warm_cvd.env(session_dir(), venv_env(extra))


def write_idx(path: Path, array, *, truncate: int = 0) -> None:
    """Write ``array`` as a gzipped unsigned-byte IDX file, optionally cut short by ``truncate`` bytes."""
    import gzip
    import struct

    import numpy as np

    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + np.asarray(array).astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(payload[: len(payload) - truncate] if truncate else payload)


def make_idx_dir(root: Path, n_train: int = 40, n_test: int = 20, rng=None) -> Path:
    """The four MNIST-style IDX files of random 28x28 images with labels 0..9 cycling."""
    import numpy as np

    rng = rng or np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


def make_folder(root: Path, classes=("cat", "dog"), per_class: int = 4, size=(20, 24)) -> Path:
    """One sub-folder of random colour images (PNG and JPEG alternating) per class."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(1)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            ext = ".png" if i % 2 == 0 else ".jpg"
            cv2.imwrite(str(root / name / f"{i}{ext}"), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


# --- a prepared split a small CNN separates in one epoch (tests of train_cnn and its backends) ---

N_CLASSES, SIZE = 3, 32
COUNTS = {"train": 20, "val": 8, "test": 10}  # images per class


def make_split(seed: int = 0):
    """3 classes of 32x32x1 images a small CNN separates in one epoch: bright band at top/middle/bottom."""
    import numpy as np

    from pipeline.io import Split, split_digest

    rng = np.random.default_rng(seed)
    x, y = {}, {}
    for part, per_class in COUNTS.items():
        images, labels = [], []
        for c in range(N_CLASSES):
            img = rng.integers(0, 60, size=(per_class, SIZE, SIZE, 1))
            rows = slice(c * 10 + 2, c * 10 + 10)
            img[:, rows] += 150
            images.append(img.astype(np.uint8))
            labels.append(np.full(per_class, c, dtype=np.int64))
        x[part], y[part] = np.concatenate(images), np.concatenate(labels)
    names = ["top", "middle", "bottom"]
    return Split(x, y, names, "synthetic", split_digest(x, y, names))


def write_model_predictions(model_id: str, y_true, y_pred, n_classes: int, parts=("test", "val")) -> None:
    """``predictions/<model id>/<part>.csv`` (pipeline.results' writer) of the given labels in the
    current directory, with probability scores peaked on the predicted class."""
    import numpy as np

    from pipeline import results

    y_pred = np.asarray(y_pred, dtype=np.int64)
    scores = np.full((len(y_pred), n_classes), 0.1 / max(1, n_classes - 1), dtype=np.float32)
    scores[np.arange(len(y_pred)), y_pred] = 0.9
    for part in parts:
        results.write_predictions(model_id, part, results.Predictions.of(y_true, y_pred, scores, "probability"))


# --- three classes of 16x16 images told apart by the height of a square (classical stage tests) ---

SQUARE_CLASSES, SQUARE_SIZE = 3, 16


def square_split(counts: dict, *, noise: int, square: int, add: bool = False, seed: int = 0):
    """Per part, ``counts[part]`` images of uniform noise in [0, noise) with a 4x6 square at a
    class-dependent height, set to ``square`` or (``add``) brightened by it: bright squares on
    weak noise are easy, dim ones in strong noise make a small forest's accuracy seed-dependent."""
    import numpy as np

    from pipeline.io import Split, split_digest

    rng = np.random.default_rng(seed)
    x, y = {}, {}
    for part, n in counts.items():
        labels = np.arange(n) % SQUARE_CLASSES
        images = rng.integers(0, noise, (n, SQUARE_SIZE, SQUARE_SIZE, 1), dtype=np.uint8)
        for i, label in enumerate(labels):
            rows = slice(2 + 4 * label, 6 + 4 * label)
            if add:
                images[i, rows, 4:10] += square
            else:
                images[i, rows, 4:10] = square
        x[part], y[part] = images, labels.astype(np.int64)
    names = ["top", "middle", "bottom"]
    return Split(x, y, names, "toy", split_digest(x, y, names))


# --- a real `mlflow server` on 127.0.0.1 (tests of a shared tracking store) ---

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refuses_connections(port: int, within_s: float = 10.0) -> bool:
    """Whether connecting to 127.0.0.1:``port`` is refused within ``within_s`` (a connect probe:
    closed connections' TIME_WAIT entries would fail a bind probe)."""
    import socket
    import time

    deadline = time.monotonic() + within_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def wait_until_answering(server, url: str, what: str, timeout: float, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail the test if ``server`` exits first (with the tail of
    ``log``) or the deadline passes."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        last_words = f":\n{log.read_text()[-3000:]}" if log is not None and log.exists() else ""
        assert server.poll() is None, f"{what} exited with {server.returncode}{last_words}"
        assert time.monotonic() < deadline, f"{what} did not answer within {timeout} s"
        time.sleep(1)


@contextlib.contextmanager
def mlflow_server(store: Path, timeout: float = 120, port: int | None = None):
    """``mlflow server`` on 127.0.0.1 (``port``, default a free one), runs in ``store/server.db`` and
    artifacts served from ``store/artifacts``; yields its URI once ``/health`` answers, stops it (its
    whole process group: the web server's workers too) after, so that the port refuses connections."""
    import signal
    import subprocess

    port = port or free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{store / 'server.db'}",
         "--serve-artifacts", "--artifacts-destination", str(store / "artifacts"), "--workers", "1"],
        # no job runner: its queue consumers (GenAI jobs, unused here) only slow the start
        env=venv_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(server, f"{uri}/health", "mlflow server", timeout)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

"""`cvd` keeps library log noise out of a run's output, but not the project's own messages.

Real subprocesses: TensorFlow's C++ logging and OpenCV's are configured from the
environment when the libraries load, which is what `cvd` sets before importing them.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import REPO_ROOT, make_folder

# TensorFlow/absl: "E0000 00:00:... cuda_platform.cc:52] failed call to cuInit", "W0000 ...";
# OpenCV: "[ERROR:0@0.011] global grfmt_png.cpp:297 readHeader ...", "[ WARN:0@0.01] ..."
# and, while TensorFlow loads, "I0000 ... port.cc:153] oneDNN custom operations are on" and
# "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR".
LIBRARY_LOG = re.compile(r"^[EWFI]\d{4} |\[ERROR:|\[ WARN:|^WARNING: All log messages", re.MULTILINE)


def run_cvd(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "OPENCV_LOG_LEVEL")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{cwd}/mlflow.db"
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_describe_imports_tensorflow_quietly(tmp_path):
    out = run_cvd("describe", "lenet5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "matches Keras count_params()" in out.stdout  # TensorFlow/Keras did load and build the model
    assert not LIBRARY_LOG.findall(out.stderr), out.stderr


def test_corrupt_png_reports_only_the_project_error(tmp_path):
    root = make_folder(tmp_path / "imgs")
    broken = root / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"GARBAGE" * 4)  # PNG signature, then no IHDR chunk
    params = tmp_path / "params.yaml"
    params.write_text((REPO_ROOT / "params.yaml").read_text())
    out = run_cvd("prepare", "--params", str(params), "--dataset", "folder", "--path", str(root), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {broken}: corrupt or unreadable image"
    assert not LIBRARY_LOG.findall(out.stderr)


def test_a_new_mlflow_store_is_made_without_mlflows_info_lines(tmp_path):
    # the first stage to open a sqlite store creates its tables; MLflow announces that at INFO level
    params = tmp_path / "params.yaml"
    params.write_text((REPO_ROOT / "params.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_LOGGING_LEVEL"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/mlflow.db"
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "compare", "--from-mlflow", "--params", str(params)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert (tmp_path / "mlflow.db").is_file()  # the store was made ...
    assert out.returncode == 2  # ... and holds no experiment yet: the project's own one-line error
    assert out.stderr.strip().splitlines() == [
        f"error: MLflow experiment 'classic-vs-deep' not found at sqlite:///{tmp_path}/mlflow.db; existing: Default"]


def test_the_users_own_setting_wins(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"GARBAGE" * 4)
    env = dict(os.environ, OPENCV_LOG_LEVEL="WARNING", MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db")
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "prepare", "--params", str(REPO_ROOT / "params.yaml"),
                          "--dataset", "folder", "--path", str(root)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "[ERROR:" in out.stderr and "corrupt or unreadable image" in out.stderr


def test_startup_filter_drops_only_tensorflows_loading_lines(capfd):
    from pipeline.quiet import startup_noise_filtered

    with startup_noise_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1795626184.334860    1070 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"Traceback: a real problem\n")
    assert capfd.readouterr().err == "Traceback: a real problem\n"


def test_startup_filter_restores_stderr_when_the_import_fails(capfd):
    from pipeline.quiet import startup_noise_filtered

    try:
        with startup_noise_filtered():
            os.write(2, b"loader: libfoo.so not found\n")
            raise ImportError("libfoo")
    except ImportError:
        pass
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "loader: libfoo.so not found\nafter\n"


def test_the_users_own_tensorflow_level_keeps_its_lines(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0", MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db")
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "describe", "lenet5"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^I\d{4} ", out.stderr, re.MULTILINE), out.stderr


RETRACE = """
import logging
import sys

if sys.argv[1] == "cvd":
    from pipeline import quiet

    quiet.mute_library_logs()  # what `cvd` does first
import tensorflow as tf

for _ in range(8):  # a new compiled function each time, as every model a stage trains has
    @tf.function
    def step(x):
        return x + 1

    step(tf.constant(1.0))
logging.getLogger("tensorflow").warning("another tensorflow warning")
"""


def test_retracing_advice_is_dropped_but_other_tensorflow_warnings_show(tmp_path):
    """A stage that trains several models (evaluation.repeats, curve points) made TensorFlow warn
    "5 out of the last 11 calls ... triggered tf.function retracing" several times."""
    script = tmp_path / "retrace.py"
    script.write_text(RETRACE)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    quiet = subprocess.run([sys.executable, str(script), "cvd"], env=env, capture_output=True, text=True, timeout=300)
    own = subprocess.run([sys.executable, str(script), "own"], env=dict(env, TF_CPP_MIN_LOG_LEVEL="0"),
                         capture_output=True, text=True, timeout=300)
    assert quiet.returncode == own.returncode == 0, quiet.stderr + own.stderr
    assert "triggered tf.function retracing" not in quiet.stderr
    assert "another tensorflow warning" in quiet.stderr
    assert "triggered tf.function retracing" in own.stderr  # the user's own level keeps TensorFlow's lines

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
LIBRARY_LOG = re.compile(r"^[EWF]\d{4} |\[ERROR:|\[ WARN:", re.MULTILINE)


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


def test_the_users_own_setting_wins(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"GARBAGE" * 4)
    env = dict(os.environ, OPENCV_LOG_LEVEL="WARNING", MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db")
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "prepare", "--params", str(REPO_ROOT / "params.yaml"),
                          "--dataset", "folder", "--path", str(root)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "[ERROR:" in out.stderr and "corrupt or unreadable image" in out.stderr

"""Library log lines that are not errors of the run kept out of ``cvd``'s output
(:func:`mute_library_logs`, called first by ``cvd``); everything else they print is kept.

Loading TensorFlow's native library prints INFO lines ("oneDNN custom operations are on",
"Could not find cuda drivers on your machine") and absl's "All log messages before
absl::InitializeLog() is called are written to STDERR" straight to file descriptor 2, before
``TF_CPP_MIN_LOG_LEVEL`` is read, so no setting silences them. While ``tensorflow`` is first
imported, :func:`install` sends descriptor 2 to a temporary file and then replays every line
that is not one of those, so a real import error still shows in full.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# Library log lines that are not errors of the run, muted before those libraries load
# (the user's own setting wins). Measured on a CPU-only machine with TensorFlow 2.21 and
# OpenCV 4: TensorFlow logs "failed call to cuInit" and grappler's "NodeDef mentions
# attribute ..." at ERROR level, so level 3 is needed (a real TensorFlow failure still
# raises a Python exception); OpenCV prints "[ WARN:...]"/"[ERROR:...] readHeader ..." for
# a corrupt image that the project reports itself, naming the file. MLflow logs INFO lines
# such as "Creating initial MLflow database tables..." when a stage makes a new store; its
# warnings and errors still show.
QUIET_LIBRARY_LOGS = {"TF_CPP_MIN_LOG_LEVEL": "3", "OPENCV_LOG_LEVEL": "OFF", "MLFLOW_LOGGING_LEVEL": "WARNING"}


def mute_library_logs() -> None:
    """Set :data:`QUIET_LIBRARY_LOGS` where the user did not, before the libraries load; at
    TensorFlow's quiet level also :func:`install` (the lines printed while TensorFlow loads,
    which no level reaches) and drop TensorFlow's retracing advice (:class:`RetracingAdvice`)."""
    for name, value in QUIET_LIBRARY_LOGS.items():
        os.environ.setdefault(name, value)
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == QUIET_LIBRARY_LOGS["TF_CPP_MIN_LOG_LEVEL"]:
        install()
        tensorflow_log = logging.getLogger("tensorflow")
        if not any(isinstance(f, RetracingAdvice) for f in tensorflow_log.filters):
            tensorflow_log.addFilter(RetracingAdvice())


class RetracingAdvice(logging.Filter):
    """Drops TensorFlow's "5 out of the last 11 calls to <function ...> triggered tf.function
    retracing" warning. Every model a stage trains is a new Keras model with new compiled
    functions (``evaluation.repeats``' extra seeds, a learning-curve point), so a stage training
    several of them always got it, several lines long, with advice that does not apply."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


# "I0000 00:00:1795626184.334860    1070 port.cc:153] ..." (absl INFO) and absl's pre-init notice
STARTUP_NOISE = re.compile(r"I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
                           r"|WARNING: All log messages before absl::InitializeLog\(\) is called")


@contextlib.contextmanager
def startup_noise_filtered() -> Iterator[None]:
    """Descriptor 2 goes to a temporary file inside the block; afterwards its lines, less
    :data:`STARTUP_NOISE`, are written to stderr (also when the block raises)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not STARTUP_NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and runs its module under the filter."""

    def find_spec(self, name, path, target=None):  # noqa: ANN001 - importlib's signature
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: later imports of tensorflow find it in sys.modules
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_quietly(module):  # noqa: ANN001
            with startup_noise_filtered():
                exec_module(module)

        spec.loader.exec_module = exec_quietly
        return spec


def install() -> None:
    """Filter TensorFlow's start-up lines whenever this process first imports it."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())

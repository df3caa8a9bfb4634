"""What every ``cvd`` command shares: the process's set-up, the one-line user errors, the
``--params`` option and loading params.yaml with a command's overrides."""
from __future__ import annotations

import functools
import gc
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable

import click

from features.errors import FeatureError
from models.errors import ModelError
from pipeline.errors import CvdError

USER_ERRORS = (CvdError, FeatureError, ModelError)
# CPython collects its oldest generation after every 10 collections of the middle one (about every
# 70,000 new objects, once they have grown by a quarter). The libraries a stage imports (TensorFlow,
# MLflow, scikit-learn, matplotlib) leave millions of long-lived objects, which each of those
# collections walks again. 100 times rarer: `compare` and `explain` 1.10x, `train_cnn` 1.15x faster
# on the default run, for up to 80 MB more peak memory (benchmarks/bench_gc.py). The younger
# generations, where most cyclic garbage is found, are collected as before.
GC_THRESHOLDS = (700, 10, 1000)


def prepare_process() -> None:
    """Before a command runs: library log noise muted (:mod:`pipeline.quiet`), the collector's thresholds set."""
    from pipeline import quiet

    quiet.mute_library_logs()
    gc.set_threshold(*GC_THRESHOLDS)


def package_version() -> str:
    try:
        return version("classic-vs-deep")
    except PackageNotFoundError:
        return "0+unknown"


def user_errors(func: Callable) -> Callable:
    """Turn user mistakes into ``error: <message>`` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            click.echo(f"error: {' '.join(str(exc).split())}", err=True)
            sys.exit(2)

    return wrapper


def load(params: str, overrides: dict[str, Any] | None = None):
    """Load params.yaml with this run's overrides (each stage checks its own components)."""
    from pipeline.config import load_config

    return load_config(params, {k: v for k, v in (overrides or {}).items() if v is not None})


params_option = click.option("--params", "params", default="params.yaml", show_default=True,
                             type=click.Path(dir_okay=False), help="The params file to read.")


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``--input-shape``'s ``H,W,C`` (or ``HxWxC``); one ConfigError line otherwise."""
    from pipeline.errors import ConfigError

    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ConfigError(f"--input-shape = {text!r}: expected H,W,C such as 32,32,1") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"--input-shape = {text!r}: expected three positive numbers H,W,C")
    return shape


def component_rows() -> list[dict[str, str]]:
    """Every registered extractor, classifier and architecture: kind, name, summary, reference."""
    import features
    from models import architectures, classifiers

    rows = []
    for kind, names, get in (("extractor", features.extractor_names(), features.get_extractor),
                             ("classifier", classifiers.names(), classifiers.get),
                             ("architecture", architectures.names(), architectures.get)):
        for name in names:
            entry = get(name)
            rows.append({"kind": kind, "name": f"`{name}`", "summary": entry.summary,
                         "reference": " ".join(entry.citation.split())})
    return rows

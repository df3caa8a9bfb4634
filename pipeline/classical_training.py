"""A classical model built and fitted from params.yaml ``classical``: the ``train_classical``
stage's model and the learning curve's points (as :mod:`pipeline.cnn_training` is for the CNNs)."""
from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Iterator

import numpy as np

from pipeline.config import Config, component_section
from pipeline.errors import ConfigError


def build_classifier(cfg: Config, classifier: str, seed: int | None = None):
    """The unfitted pipeline of params.yaml ``classical.<classifier>`` (+ ``classical.scale`` and
    ``classical.pca``), and its search grid when ``classical.search`` is on; a bad value is one ConfigError line.
    ``random_state`` is ``seed``, by default params.yaml's."""
    from models.classical import make_classifier, make_search, predefined_split

    with component_section(cfg, f"classical.{classifier}"):
        pipe = make_classifier(classifier, pca=cfg.classical.pca, scale=cfg.classical.scale,
                               random_state=cfg.seed if seed is None else seed,
                               **cfg.classical.section(classifier))
    grid = cfg.classical.grid.section(classifier)
    if grid:  # checked even when search is off, so a typo does not wait for the day it is used
        with component_section(cfg, f"classical.grid.{classifier}"):
            make_search(pipe, grid, cv=predefined_split(1, 1))
    return pipe, (grid if cfg.classical.search else None)


def _fit_pca(cfg: Config, pipe, n: int, dim: int, cap: bool) -> None:
    """An int ``classical.pca`` above what ``n`` images x ``dim`` features allow: one ConfigError line,
    or with ``cap`` (a learning curve's small subset) that many components instead."""
    pca, most = cfg.classical.pca, min(n, dim)
    if isinstance(pca, int) and pca > most:
        if not cap:
            raise ConfigError(f"{cfg.source}: classical.pca = {pca}: more components than the {most} that "
                              f"{n:,} training images x {dim:,} features allow")
        pipe.set_params(pca__n_components=most)


@contextlib.contextmanager
def solver_limit_reported(cfg: Config, classifier: str, n: int) -> Iterator[None]:
    """scikit-learn's ConvergenceWarnings inside the block (a dozen lines each, with links) become
    one line on stderr naming the setting that bounds the solver; other warnings show as usual."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        yield
    stopped = False
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            stopped = True
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if stopped:
        limit = cfg.classical.section(classifier).get("max_iter")
        setting = f"classical.{classifier}.max_iter = {limit}" if limit is not None else f"classical.{classifier}"
        print(f"{classifier} on {n:,} training images: the solver stopped at its iteration limit before "
              f"converging ({setting}); the model is used as fitted", file=sys.stderr, flush=True)


def fit_model(cfg: Config, classifier: str, data: dict, seed: int | None = None, cap_pca: bool = False):
    """Fit the configured pipeline; returns (fitted pipeline, seconds, best params or None).
    ``cap_pca``: see :func:`_fit_pca`."""
    from models.classical import make_search, predefined_split

    from pipeline.progress import heartbeat

    pipe, grid = build_classifier(cfg, classifier, seed)
    n, dim = data["x_train"].shape
    _fit_pca(cfg, pipe, n, dim, cap_pca)
    what = f"fitting {classifier}{' (grid search)' if grid else ''} on {n:,} images x {dim:,} features"
    start = time.perf_counter()
    with heartbeat(what), solver_limit_reported(cfg, classifier, n):
        if grid:
            x = np.concatenate([data["x_train"], data["x_val"]])
            y = np.concatenate([data["y_train"], data["y_val"]])
            search = make_search(pipe, grid, cv=predefined_split(len(data["y_train"]), len(data["y_val"])))
            search.fit(x, y)
            return search.best_estimator_, time.perf_counter() - start, search.best_params_
        pipe.fit(data["x_train"], data["y_train"])
    return pipe, time.perf_counter() - start, None

"""The extractors of params.yaml ``features``: built from their sections, loaded as the ``features``
stage saved them fitted (``artifacts/features/<name>.skops``), and the matrices it stored
(``data/features/<name>.npz``) read back.

Shared by the ``features`` stage, ``train_classical`` (the extractor in front of each
classifier) and ``cvd visualize``/``explain`` (the drawings). Imports only the shared leaves of
``pipeline`` (errors, layout), so a drawing does not depend on a stage.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import layout
from pipeline.errors import DataError, component_section

if TYPE_CHECKING:
    from pipeline.config import Config


def extractor_params(cfg: Config, name: str) -> dict[str, Any]:
    """``features.<name>`` plus, where the extractor takes them, the stage-wide n_jobs/chunk_size,
    the seed, and ``sections``: every other extractor's section (for one built of others, such as
    ``stack``). Its own section wins."""
    from features import get_extractor

    accepted = get_extractor(name).parameters()
    sections = {other: cfg.features.section(other) for other in cfg.features.model_extra if other != name}
    shared = {"n_jobs": cfg.features.n_jobs, "chunk_size": cfg.features.chunk_size, "random_state": cfg.seed,
              "sections": sections}
    return {k: v for k, v in shared.items() if k in accepted} | cfg.features.section(name)


def build_extractor(cfg: Config, name: str, seed: int | None = None):
    """The extractor ``name`` built from params.yaml ``features.<name>`` plus the stage-wide
    n_jobs/chunk_size and the seed where it takes them (:func:`extractor_params`); ``seed``
    replaces the random_state of an extractor that takes one.

    An unknown ``name`` raises ``features.errors.ParameterError`` listing the extractors; a
    bad parameter in the section a ConfigError naming the params file and the section.
    """
    from features import make_extractor

    params = extractor_params(cfg, name)
    if seed is not None and "random_state" in params:
        params["random_state"] = seed
    with component_section(cfg.source, f"features.{name}"):
        return make_extractor(name, **params)


def load_extractor(name: str):
    """The fitted extractor ``features@<name>`` saved; one line naming the file when it is missing."""
    from models.classical import load_skops

    path = layout.extractor_path(name)
    if not path.is_file():
        raise DataError(f"{path}: not found; run `cvd features --name {name}` (or `dvc repro`) first")
    return load_skops(path)


def load_features(name: str, path: str | Path | None = None) -> dict:
    """Read ``features@<name>``'s matrices and labels back (used by ``train_classical``)."""
    path = Path(path or layout.features_path(name))
    if not path.is_file():
        raise DataError(f"{path}: not found; run `cvd features --name {name}` (or `dvc repro`) first")
    with np.load(path, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    data["class_names"] = [str(c) for c in data["class_names"]]
    for key in ("dataset", "split_sha256", "feature"):
        data[key] = str(data[key])
    return data

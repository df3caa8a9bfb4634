"""Which models the learning curve follows, and on which files: ``reports/curve_plan.json``.

``compare`` writes it; every ``learning_curve@<fraction>`` stage depends on it instead of on all
models' outputs and the whole ``classical`` and ``cnn`` sections. It names the curve's models
(``curve.models``, else the best classical and the best deep model chosen on validation) and
holds the SHA-256 of the files each point reads: the models' metrics, run info and test
predictions (the whole-split point reuses them), a classical model's feature matrix (the other
points refit on its rows) and the split. A model retrained because its settings or data changed
changes its files, so the plan, so every point reruns; a change to a model the curve does not
follow leaves the plan byte-identical and reruns no point. The stage checks the digests before
it trains, so a plan older than the files is refused rather than trusted.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

from comparison import curves
from pipeline import layout
from pipeline.config import Config
from pipeline.errors import ConfigError, DataError
from pipeline.io import read_json

PLAN = layout.CURVE_PLAN


def curve_models(cfg: Config, summary: Mapping[str, Any]) -> list[str]:
    """``curve.models`` (configured models, at least one of each approach), else compare's choice
    in ``summary`` (empty when an approach has no model)."""
    if cfg.curve.models is None:
        chosen = [summary.get(key) for key in ("best_classical", "best_deep")]
        return [entry["model"] for entry in chosen] if all(chosen) else []
    models = list(cfg.curve.models)
    configured = [m for ids in cfg.model_ids().values() for m in ids]
    unknown = [m for m in models if m not in configured]
    if unknown:
        raise ConfigError(f"{cfg.source}: curve.models = {models}: {unknown[0]!r} is not a configured model; "
                          f"configured: {', '.join(configured)}")
    if {layout.approach_of(m) for m in models} != set(curves.APPROACHES) or len(set(models)) != len(models):
        raise ConfigError(f"{cfg.source}: curve.models = {models}: needs distinct models, at least one classical "
                          f"(<feature>-<classifier>) and one deep (an architecture)")
    return models


def model_files(model: str) -> list[Path]:
    """The files a curve point reads for ``model``."""
    approach = layout.approach_of(model)
    files = [layout.scores_path(approach, model), layout.run_info_path(approach, model),
             layout.predictions_path(model, "test")]
    if approach == "classical":
        files.append(layout.features_path(layout.split_model_id(model)[0]))
    return files


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(cfg: Config, summary: Mapping[str, Any]) -> dict:
    """The plan: the curve's models and the digest of every file its points read."""
    models = curve_models(cfg, summary)
    files = [layout.SPLIT, *(path for model in models for path in model_files(model))]
    # a file missing here (compare itself does not read them all) fails the point that needs it
    return {"models": models, "files": {path.as_posix(): sha256(path) if path.is_file() else None for path in files}}


def read() -> list[str]:
    """The curve's models, once every file of the plan is checked against its digest."""
    plan = read_json(PLAN)
    if not plan.get("models"):
        raise DataError(f"{PLAN}: the learning curve needs a best classical and a best deep model; "
                        f"configure one of each and run `dvc repro compare`")
    for path, digest in plan["files"].items():
        if not Path(path).is_file():
            raise DataError(f"{path}: missing; run `dvc repro`")
        if sha256(Path(path)) != digest:
            raise DataError(f"{path}: changed since `compare` planned the learning curve ({PLAN}); "
                            f"run `dvc repro` to bring them in step")
    return list(plan["models"])

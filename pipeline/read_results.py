"""``compare`` and ``explain`` read the models' files back (:mod:`pipeline.results` writes
them): per-image predictions, scores as leaderboard rows, confusion rows, CNN histories. Only
the files of the models asked for are read; every problem is one line naming the file and the
``dvc repro`` stage that writes it.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from comparison.leaderboard import APPROACHES
from comparison.metrics import Metric, choose_metric
from comparison.predictions import Predictions, read_file
from comparison.results import model_row
from comparison.statistics import TestImages, test_images
from pipeline import layout
from pipeline.errors import DataError
from pipeline.io import read_json

# the ones compare plots: training curves, and the budget curve (test_accuracy: for that plot only)
HISTORY_COLUMNS = ("epoch", "accuracy", "val_accuracy", "loss", "val_loss", "epoch_seconds", "test_accuracy")


def read_predictions(model_id: str, part: str) -> Predictions:
    """Read ``predictions/<model id>/<part>.csv`` back (``part``: ``val`` or ``test``), with the
    score kind its metrics JSON records (``""`` if none); errors name the file and its stage."""
    approach = layout.approach_of(model_id)
    kind = ""
    metrics = layout.scores_path(approach, model_id)
    if metrics.is_file():
        try:
            kind = str(read_json(metrics).get("score_kind") or "")
        except (DataError, AttributeError):
            kind = ""
    return read_file(layout.predictions_path(model_id, part), layout.stage_for(approach, model_id), kind)


def read_test_images(rows: Sequence[Mapping[str, Any]]) -> TestImages:
    """The test predictions of every row, checked (:func:`comparison.statistics.test_images`)."""
    predictions = {row["model"]: read_predictions(row["model"], "test") for row in rows}
    return test_images(rows, predictions, where=lambda model: str(layout.predictions_path(model, "test")),
                       fix=lambda row: layout.stage_for(row["approach"], row["model"]))


def read_rows(model_ids: Mapping[str, Sequence[str]]) -> list[dict]:
    """Rows of the given models (``{approach: [model id, ...]}``, as ``Config.model_ids()``).

    Files of other models are never read. Every missing file is reported at once, each
    with the stage that writes it.
    """
    rows, missing = [], []
    for approach, ids in model_ids.items():
        for model_id in ids:
            paths = (layout.scores_path(approach, model_id), layout.run_info_path(approach, model_id))
            absent = [str(p) for p in paths if not p.is_file()]
            stage = layout.stage_for(approach, model_id)
            if absent:
                missing.append(f"{' and '.join(absent)} (run `dvc repro {stage}`)")
                continue
            data = {**read_json(paths[0]), **read_json(paths[1])}
            rows.append(model_row(approach, model_id, data, where=f"{paths[0]} / {paths[1].name}",
                                  fix=f"rerun `dvc repro {stage}`"))
    if missing:
        shown = "; ".join(missing[:4])
        more = f"; and {len(missing) - 4} more (or run `dvc repro` for all)" if len(missing) > 4 else ""
        raise DataError(f"missing metrics of {len(missing)} configured model(s): {shown}{more}")
    return rows


def _read_csv(path: Path, stage: str, columns: Sequence[str], empty: str) -> list[dict[str, str]]:
    """The records of a CSV that must exist, have ``columns`` and at least one row."""
    if not path.is_file():
        raise DataError(f"{path}: not found (run `dvc repro {stage}`)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or ())
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)} (has {','.join(header) or 'none'}); "
                            f"rerun `dvc repro {stage}`")
        records = list(reader)
    if not records:
        raise DataError(f"{path}: {empty}; rerun `dvc repro {stage}`")
    return records


def read_confusion(approach: str, model_id: str) -> tuple[list[str], list[str]]:
    """(actual, predicted) class names of every test image, from ``plots/confusion/<id>.csv``."""
    records = _read_csv(layout.confusion_csv(model_id), layout.stage_for(approach, model_id),
                        ("actual", "predicted"), "no rows")
    return [r["actual"] for r in records], [r["predicted"] for r in records]


def read_history(arch: str) -> dict[str, np.ndarray]:
    """:data:`HISTORY_COLUMNS` of a CNN's history; an empty cell reads as NaN."""
    path, stage = layout.history_path(arch), layout.stage_for("deep", arch)
    records = _read_csv(path, stage, HISTORY_COLUMNS, "no epochs recorded")
    try:
        return {c: np.array([float(r[c]) if r[c] not in ("", None) else np.nan for r in records])
                for c in HISTORY_COLUMNS}
    except ValueError as exc:
        raise DataError(f"{path}: not numeric ({exc}); rerun `dvc repro {stage}`") from None


def rows_from_mlflow(model_ids: Mapping[str, Sequence[str]], experiment: str,
                     split: str | None) -> tuple[list[dict], str, list[str]]:
    """Rows of the configured models (``{approach: [model id, ...]}``) from their latest FINISHED
    MLflow runs on ``split`` (None: the newest run's); returns (rows, split, models without a run)."""
    latest, split = latest_finished_runs(experiment, APPROACHES, split)
    rows, missing = [], []
    for approach, ids in model_ids.items():
        for model_id in ids:
            run = latest.get((approach, model_id))
            if run is None:
                missing.append(model_id)
                continue
            data = {**run.data.metrics, **run.data.tags, "mlflow_run_id": run.info.run_id}
            rows.append(model_row(approach, model_id, data, where=f"MLflow run {run.info.run_id} ({model_id})",
                                  fix=f"rerun `dvc repro {layout.stage_for(approach, model_id)}`"))
    if not rows:
        raise DataError(f"MLflow experiment {experiment!r}: none of the configured models has a FINISHED run "
                        f"on split {split[:12]}")
    return rows, split, missing


def latest_finished_runs(experiment: str, approaches: Sequence[str], split: str | None) -> tuple[dict, str]:
    """The newest FINISHED run per ``(approach tag, model tag)`` in ``experiment``, on one split.

    ``split`` is the split hash the runs must carry; ``None`` (no prepared split here) takes
    the split of the most recent run. Returns ``({(approach, model): Run}, split)``.

    Raises:
        DataError: the experiment does not exist (the existing ones are listed), or it has
            no FINISHED run of ``approaches`` on the split.
    """
    import mlflow

    from pipeline.store import tracking_uri

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        existing = sorted(e.name for e in mlflow.search_experiments())
        raise DataError(f"MLflow experiment {experiment!r} not found at {uri}; existing: "
                        f"{', '.join(existing) or 'none'}")
    runs = []
    for approach in approaches:
        query = f"tags.approach = '{approach}' AND attributes.status = 'FINISHED'"
        if split:
            query += f" AND tags.split_sha256 = '{split}'"
        runs += mlflow.search_runs(experiment_names=[experiment], filter_string=query,
                                   order_by=["attributes.start_time DESC"], output_format="list")
    runs = [r for r in runs if "seed" not in r.data.tags]  # a model's extra-seed runs nest under its own
    if not runs:
        where = f" on split {split[:12]} (data/prepared/manifest.json)" if split else ""
        raise DataError(f"MLflow experiment {experiment!r} has no FINISHED {' or '.join(approaches)} runs{where}")
    runs.sort(key=lambda r: r.info.start_time or 0, reverse=True)
    if split is None:
        split = runs[0].data.tags.get("split_sha256", "")
        runs = [r for r in runs if r.data.tags.get("split_sha256", "") == split]
    latest: dict[tuple[str, str], Any] = {}
    for r in runs:
        latest.setdefault((r.data.tags.get("approach", ""), r.data.tags.get("model", "")), r)
    return latest, split


def read_manifest() -> dict:
    """The prepared split's manifest, or ``{}`` when there is none here (e.g. a fresh clone)."""
    try:
        manifest = json.loads(layout.MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def metric_for(setting: str, images: TestImages) -> Metric:
    """``evaluation.metric`` (``setting``) for the class counts of the training split (the manifest's), else of the test images."""
    train = (read_manifest().get("counts_per_class") or {}).get("train")
    if isinstance(train, dict) and len(train) >= 2:
        return choose_metric(setting, train.values(), "training")
    return choose_metric(setting, images.class_counts(), "test")

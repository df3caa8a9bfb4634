"""What every model stage writes, classical or deep, and how ``compare`` reads it back.

Per model id (``hog-rbf_svm``, ``lenet5``):

* ``metrics/<dir>/<id>.json``      scores that depend only on params + data (byte-identical
                                    for the same seed): test_accuracy, macro_f1 and their
                                    intervals (``*_ci_low``/``*_ci_high``), n_test, score_kind,
                                    val_accuracy, param_count, ..., and over the seeds of
                                    ``evaluation.repeats`` (:func:`pipeline.repeats.repeat_summary`)
* ``metrics/<dir>/<id>.run.json``  what varies run to run: timings, device, MLflow run id
* ``plots/confusion/<id>.csv``     long-form confusion rows for DVC's ``confusion`` template
* ``plots/confusion/<id>.png``     the drawn matrix (CNNs; a classical model's is drawn by
                                    ``compare`` for its MLflow run: the lean classical stage
                                    imports no matplotlib)
* ``plots/per_class/<id>.csv``     per-class precision/recall/F1/support
* ``plots/history/<arch>.csv``     per-epoch training history (CNNs only)
* ``predictions/<id>/val.csv``, ``predictions/<id>/test.csv``  one row per image of that part
                                    of ``data/prepared/split.npz`` (see :func:`write_predictions`);
                                    the paired comparison of two models reads them back

The union of the two metric dicts is what is logged to the MLflow run (by the CNN stage
itself, for a classical model by ``compare``: :mod:`pipeline.model_runs`), so DVC and MLflow
never drift apart. Every reader here fails with one line naming the file and the
``dvc repro`` stage that writes it.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from models.evaluate import DECIMALS  # every score in the metrics files is rounded alike
from pipeline.errors import DataError
from pipeline.io import atomic_path, read_json, write_csv, write_json
from pipeline.predictions import PARTS, Predictions, read_file, write_file
from pipeline.repeats import REPEAT_KEYS, repeat_summary

METRICS_DIRS = {"classical": Path("metrics/classical"), "deep": Path("metrics/cnn")}
CONFUSION_DIR = Path("plots/confusion")
PER_CLASS_DIR = Path("plots/per_class")
HISTORY_DIR = Path("plots/history")
HISTORY_COLUMNS = ("epoch", "accuracy", "val_accuracy", "loss", "val_loss")  # the ones compare plots
PREDICTIONS_DIR = Path("predictions")
REQUIRED = ("test_accuracy", "macro_f1", "param_count")
INTERVAL_KEYS = ("test_accuracy_ci_low", "test_accuracy_ci_high", "macro_f1_ci_low", "macro_f1_ci_high")


def scores_path(approach: str, model_id: str) -> Path:
    return METRICS_DIRS[approach] / f"{model_id}.json"


def run_info_path(approach: str, model_id: str) -> Path:
    return METRICS_DIRS[approach] / f"{model_id}.run.json"


def history_path(arch: str) -> Path:
    return HISTORY_DIR / f"{arch}.csv"


def stage_for(approach: str, model_id: str) -> str:
    """The DVC stage that writes a model's files (``train_classical@hog-rbf_svm``)."""
    return f"train_classical@{model_id}" if approach == "classical" else f"train_cnn@{model_id}"


def approach_of(model_id: str) -> str:
    """``classical`` for a ``<feature>-<classifier>`` id, else ``deep``: a module name (an
    architecture's) has no hyphen, so the id alone tells which stage wrote a model's files."""
    return "classical" if "-" in model_id else "deep"


def predictions_path(model_id: str, part: str) -> Path:
    """``predictions/<model id>/<part>.csv``; both approaches share the folder."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}; got {part!r}")
    return PREDICTIONS_DIR / model_id / f"{part}.csv"


# --- per-image predictions (format: pipeline.predictions) -----------------------------------

def write_predictions(model_id: str, part: str, predictions: Predictions) -> Path:
    """Write ``predictions/<model id>/<part>.csv`` (see :func:`pipeline.predictions.write_file`)."""
    dest = predictions_path(model_id, part)
    write_file(dest, predictions)
    return dest


def read_predictions(model_id: str, part: str) -> Predictions:
    """Read ``predictions/<model id>/<part>.csv`` back (``part``: ``val`` or ``test``), with the
    score kind its metrics JSON records (``""`` if none); errors name the file and its stage."""
    approach = approach_of(model_id)
    kind = ""
    metrics = scores_path(approach, model_id)
    if metrics.is_file():
        try:
            kind = str(read_json(metrics).get("score_kind") or "")
        except (DataError, AttributeError):
            kind = ""
    return read_file(predictions_path(model_id, part), stage_for(approach, model_id), kind)


# --- writing --------------------------------------------------------------------------------

def score_intervals(test: Predictions, n_classes: int, *, seed: int, confidence: float,
                    resamples: int) -> dict[str, float]:
    """The ``confidence`` intervals of a model's test scores, rounded to 6 decimals:
    ``test_accuracy_ci_low/high`` (Wilson score interval) and ``macro_f1_ci_low/high``
    (percentile bootstrap over the test images, ``resamples`` draws seeded with ``seed``)."""
    from models.statistics import bootstrap_interval, macro_f1, wilson_interval

    acc_low, acc_high = wilson_interval(int(np.count_nonzero(test.correct)), len(test), confidence)
    f1_low, f1_high = bootstrap_interval(test.y_true, test.y_pred, lambda t, p: macro_f1(t, p, n_classes),
                                         resamples=resamples, seed=seed, confidence=confidence)
    values = (acc_low, acc_high, f1_low, f1_high)
    return {key: round(float(v), DECIMALS) for key, v in zip(INTERVAL_KEYS, values)}


def record_model(*, run: Any | None, approach: str, model_id: str, test: Predictions, val: Predictions,
                 class_names: list[str], param_count: int, model_path: Path, run_info: Mapping[str, Any],
                 seed: int, confidence: float, bootstrap_resamples: int,
                 extra_scores: Mapping[str, Any] | None = None,
                 repeats: Sequence[Mapping[str, float]] = (), draw_confusion: bool = True) -> dict:
    """Evaluate test predictions, write the model's metrics, plots and per-image predictions,
    log them to ``run`` (``None``: no MLflow here -- the classical stage, whose run ``compare``
    logs from these files; with ``draw_confusion`` false no confusion PNG, which would import matplotlib).

    ``test``/``val`` are the model's predictions on every image of those parts, in split
    order (:meth:`Predictions.of`), each computed once by the stage; they are written to
    ``predictions/<id>/{test,val}.csv``. Besides accuracy and macro-F1 the scores hold their
    intervals at ``confidence`` (:func:`score_intervals`), ``n_test`` and ``score_kind``,
    all rounded to 6 decimals, so the same predictions give the same bytes. ``repeats`` are
    the scores of the models trained with the extra seeds (``pipeline.repeats.PER_SEED_KEYS``); with this
    model's own (seed ``seed``) first they give the :func:`pipeline.repeats.repeat_summary` keys.

    ``run`` is the MLflow run yielded by :func:`pipeline.tracking.stage_run`; everything is
    logged to its id, whichever run happens to be active (the numbers only: ``score_kind``
    is not a metric). ``run_info`` holds the run-dependent values (fit_seconds,
    predict_images_per_s, device, identity tags ...); the run's id and experiment id are
    added to it here when there is a run.
    """
    from models.evaluate import classification_metrics, confusion_long_rows

    for part, p in (("test", test), ("val", val)):
        if np.ndim(p.scores) != 2 or np.shape(p.scores)[1] != len(class_names):
            raise ValueError(f"{model_id} {part}: scores must have one column per class "
                             f"({len(class_names)}); got shape {np.shape(p.scores)}")
    if test.score_kind != val.score_kind:
        raise ValueError(f"{model_id}: test and val scores differ in kind ({test.score_kind} / {val.score_kind})")
    y_true, y_pred = test.y_true, test.y_pred
    metrics = classification_metrics(y_true, y_pred, class_names)
    scores = {
        "test_accuracy": metrics["test_accuracy"],
        "macro_f1": metrics["macro_f1"],
        **score_intervals(test, len(class_names), seed=seed, confidence=confidence, resamples=bootstrap_resamples),
        "n_test": len(test),
        "score_kind": test.score_kind,
        "param_count": int(param_count),
        "model_bytes": int(Path(model_path).stat().st_size),
        **(extra_scores or {}),
    }
    own = {"seed": seed, "test_accuracy": scores["test_accuracy"], "macro_f1": scores["macro_f1"],
           "val_accuracy": scores.get("val_accuracy", float(np.mean(val.correct)))}
    scores |= repeat_summary([own, *repeats])
    info = {**run_info, "model": model_id, "approach": approach}
    if run is not None:
        info |= {"mlflow_run_id": run.info.run_id, "mlflow_experiment_id": run.info.experiment_id}

    for part, p in (("test", test), ("val", val)):
        write_predictions(model_id, part, p)
    confusion_csv, confusion_png = CONFUSION_DIR / f"{model_id}.csv", CONFUSION_DIR / f"{model_id}.png"
    per_class_csv = PER_CLASS_DIR / f"{model_id}.csv"
    write_csv(confusion_csv, confusion_long_rows(y_true, y_pred, class_names), ["actual", "predicted"])
    per_class = [{"class": name, **values} for name, values in metrics["per_class"].items()]
    write_csv(per_class_csv, per_class, ["class", "precision", "recall", "f1", "support"])
    if draw_confusion:
        with atomic_path(confusion_png) as tmp:
            tmp.write_bytes(confusion_png_bytes(metrics["confusion"], class_names, model_id, scores["test_accuracy"]))
    if run is not None:
        log_model_files(run.info.run_id, scores, info, confusion_png)

    write_json(scores_path(approach, model_id), scores)
    write_json(run_info_path(approach, model_id), info)
    return {**scores, **info}


def confusion_png_bytes(confusion, class_names: Sequence[str], model_id: str, test_accuracy: float) -> bytes:
    """The model's test confusion matrix drawn as a PNG (:func:`models.evaluate.plot_confusion`)."""
    import io

    from models.evaluate import plot_confusion

    figure = plot_confusion(confusion, class_names, f"{model_id}: test accuracy {test_accuracy:.4f}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def log_model_files(run_id: str, scores: Mapping[str, Any], info: Mapping[str, Any], confusion_png: Path) -> None:
    """Log a model's scores and run info (their numbers) and its plot files to the MLflow run ``run_id``."""
    import mlflow

    from pipeline.tracking import log_metrics

    model_id = info["model"]
    log_metrics(scores, run_id=run_id)
    log_metrics(info, run_id=run_id)
    # one artifact folder per kind, as on disk: the confusion CSV, the per-class CSV and a CNN's
    # history CSV share the file name <id>.csv, and in one folder each would replace the other
    for path in (confusion_png, CONFUSION_DIR / f"{model_id}.csv", PER_CLASS_DIR / f"{model_id}.csv"):
        mlflow.log_artifact(str(path), artifact_path=f"plots/{path.parent.name}", run_id=run_id)


# --- reading --------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def model_row(approach: str, model_id: str, data: Mapping[str, Any], *, where: str, fix: str) -> dict:
    """One leaderboard row from a model's merged scores + run info (files or an MLflow run).

    ``where`` names the source and ``fix`` says what to do, for the one-line error about a
    missing or non-numeric required value or a missing split hash.
    """
    bad = [key for key in REQUIRED if _number(data.get(key)) is None]
    if bad:
        raise DataError(f"{where}: missing or non-numeric {', '.join(bad)}; {fix}")
    split = data.get("split_sha256")
    if not isinstance(split, str) or not split:
        raise DataError(f"{where}: no split_sha256 recorded; {fix}")
    feature = classifier = arch = ""
    if approach == "classical":
        guess_feature, _, guess_classifier = model_id.partition("-")
        feature = str(data.get("feature") or guess_feature)
        classifier = str(data.get("classifier") or guess_classifier)
    else:
        arch = str(data.get("arch") or model_id)
    model_bytes, n_test, repeats = (_number(data.get(key)) for key in ("model_bytes", "n_test", "repeats"))
    per_seed = data.get("per_seed")
    return {
        "approach": approach,
        "model": model_id,
        "feature": feature,
        "classifier": classifier,
        "arch": arch,
        "test_accuracy": float(data["test_accuracy"]),
        "macro_f1": float(data["macro_f1"]),
        **{key: _number(data.get(key)) for key in INTERVAL_KEYS},  # None when not recorded
        "n_test": None if n_test is None else int(n_test),
        "score_kind": str(data.get("score_kind") or ""),
        "val_accuracy": _number(data.get("val_accuracy")),
        "repeats": None if repeats is None else int(repeats),  # None: written before repeats existed
        **{key: _number(data.get(key)) for key in REPEAT_KEYS},
        "per_seed": dict(per_seed) if isinstance(per_seed, Mapping) else None,
        "param_count": int(data["param_count"]),
        "model_bytes": None if model_bytes is None else int(model_bytes),
        "fit_seconds": _number(data.get("fit_seconds")),
        "predict_images_per_s": _number(data.get("predict_images_per_s")),
        "dataset": str(data.get("dataset") or ""),
        "split_sha256": split,
        "mlflow_run_id": str(data.get("mlflow_run_id") or ""),
    }


def read_rows(model_ids: Mapping[str, Sequence[str]]) -> list[dict]:
    """Rows of the given models (``{approach: [model id, ...]}``, as ``Config.model_ids()``).

    Files of other models are never read. Every missing file is reported at once, each
    with the stage that writes it.
    """
    rows, missing = [], []
    for approach, ids in model_ids.items():
        for model_id in ids:
            paths = (scores_path(approach, model_id), run_info_path(approach, model_id))
            absent = [str(p) for p in paths if not p.is_file()]
            stage = stage_for(approach, model_id)
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
    records = _read_csv(CONFUSION_DIR / f"{model_id}.csv", stage_for(approach, model_id),
                        ("actual", "predicted"), "no rows")
    return [r["actual"] for r in records], [r["predicted"] for r in records]


def read_history(arch: str) -> dict[str, np.ndarray]:
    """Epoch, accuracy, val_accuracy, loss, val_loss of a CNN; an empty cell reads as NaN."""
    path, stage = history_path(arch), stage_for("deep", arch)
    records = _read_csv(path, stage, HISTORY_COLUMNS, "no epochs recorded")
    try:
        return {c: np.array([float(r[c]) if r[c] not in ("", None) else np.nan for r in records])
                for c in HISTORY_COLUMNS}
    except ValueError as exc:
        raise DataError(f"{path}: not numeric ({exc}); rerun `dvc repro {stage}`") from None

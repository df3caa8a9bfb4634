"""What every model stage writes, classical or deep.

Per model id (``hog-rbf_svm``, ``lenet5``):

* ``metrics/<dir>/<id>.json``      scores that depend only on params + data (byte-identical
                                    for the same seed): test_accuracy, macro_f1 and their
                                    intervals (``*_ci_low``/``*_ci_high``), n_test, score_kind,
                                    val_accuracy, param_count, ..., and over the seeds of
                                    ``evaluation.repeats`` (:func:`comparison.repeats.repeat_summary`)
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
never drift apart. What the files hold is computed by :mod:`comparison.results`, the paths are
:mod:`pipeline.layout`'s, and :mod:`pipeline.read_results` reads them back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from comparison.predictions import Predictions, csv_text
from pipeline import layout
from pipeline.io import atomic_path, read_json, write_csv, write_json


# --- per-image predictions (format: comparison.predictions) ---------------------------------

def write_predictions(model_id: str, part: str, predictions: Predictions) -> Path:
    """Write ``predictions/<model id>/<part>.csv`` atomically (:func:`comparison.predictions.csv_text`)."""
    dest = layout.predictions_path(model_id, part)
    text = csv_text(predictions, dest)
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return dest


def record_model(*, run: Any | None, approach: str, model_id: str, test: Predictions, val: Predictions,
                 class_names: list[str], param_count: int, model_path: Path, run_info: Mapping[str, Any],
                 seed: int, confidence: float, bootstrap_resamples: int,
                 extra_scores: Mapping[str, Any] | None = None,
                 repeats: Sequence[Mapping[str, float]] = (), draw_confusion: bool = True,
                 log_files: Callable[[dict, dict, Path], Any] | None = None) -> dict:
    """Evaluate test predictions, write the model's metrics, plots and per-image predictions, and
    hand them to ``log_files`` for the MLflow run (``None``: no MLflow here -- the classical stage,
    whose run ``compare`` logs from these files; with ``draw_confusion`` false no confusion PNG,
    which would import matplotlib).

    ``test``/``val`` are the model's predictions on every image of those parts, in split
    order (:meth:`Predictions.of`), each computed once by the stage; they are written to
    ``predictions/<id>/{test,val}.csv``. Besides accuracy and macro-F1 the scores hold their
    intervals at ``confidence`` (:func:`comparison.results.score_intervals`), ``n_test`` and ``score_kind``,
    all rounded to 6 decimals, so the same predictions give the same bytes. ``repeats`` are
    the scores of the models trained with the extra seeds (``comparison.repeats.PER_SEED_KEYS``); with this
    model's own (seed ``seed``) first they give the :func:`comparison.repeats.repeat_summary` keys.

    ``run`` is the stage's MLflow run (or None); its id and experiment id are added to
    ``run_info``, the run-dependent values (fit_seconds, predict_images_per_s, device, identity
    tags ...). ``log_files(scores, info, confusion_png)`` is called once they are computed and
    the PNG written, before the JSON files: the stage logs them to its run's id
    (:func:`pipeline.model_logging.log_model_files`, through its guard, so a store that does
    not answer costs no file).
    """
    from comparison.results import check_predictions, model_scores
    from models.evaluate import classification_metrics, confusion_long_rows

    check_predictions(model_id, test, val, len(class_names))
    y_true, y_pred = test.y_true, test.y_pred
    metrics = classification_metrics(y_true, y_pred, class_names)
    scores = model_scores(metrics, test, val, n_classes=len(class_names), param_count=param_count,
                          model_bytes=Path(model_path).stat().st_size, seed=seed, confidence=confidence,
                          resamples=bootstrap_resamples, extra_scores=extra_scores, repeats=repeats)
    info = {**run_info, "model": model_id, "approach": approach}
    if run is not None:
        info |= {"mlflow_run_id": run.info.run_id, "mlflow_experiment_id": run.info.experiment_id}

    for part, p in (("test", test), ("val", val)):
        write_predictions(model_id, part, p)
    confusion_csv, confusion_png = layout.confusion_csv(model_id), layout.confusion_png(model_id)
    per_class_csv = layout.per_class_csv(model_id)
    write_csv(confusion_csv, confusion_long_rows(y_true, y_pred, class_names), ["actual", "predicted"])
    per_class = [{"class": name, **values} for name, values in metrics["per_class"].items()]
    write_csv(per_class_csv, per_class, ["class", "precision", "recall", "f1", "support"])
    if draw_confusion:
        from comparison.model_plot import confusion_png_bytes

        with atomic_path(confusion_png) as tmp:
            tmp.write_bytes(confusion_png_bytes(metrics["confusion"], class_names, model_id, scores["test_accuracy"]))
    if log_files is not None:
        log_files(scores, info, confusion_png)

    write_json(layout.scores_path(approach, model_id), scores)
    write_json(layout.run_info_path(approach, model_id), info)
    return {**scores, **info}


def mark_unlogged(approach: str, model_id: str, result: dict) -> dict:
    """Rewrite the model's ``.run.json`` for a run its stage could not log: ``mlflow_run_id`` becomes
    ``mlflow_unfinished_run_id`` (``compare`` / ``cvd log`` then log the run from the files). Returns
    ``result`` changed the same way."""
    path = layout.run_info_path(approach, model_id)
    info = read_json(path)
    for data in (info, result):
        if data.get("mlflow_run_id"):
            data["mlflow_unfinished_run_id"] = data.pop("mlflow_run_id")
    write_json(path, info)
    return result

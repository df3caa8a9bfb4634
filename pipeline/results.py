"""What every model stage writes, classical or deep, so ``compare`` treats both alike.

Per model id (``hog-rbf_svm``, ``lenet5``):

* ``metrics/<dir>/<id>.json``      scores that depend only on params + data (byte-identical
                                    for the same seed): test_accuracy, macro_f1, param_count, ...
* ``metrics/<dir>/<id>.run.json``  what varies run to run: timings, device, MLflow run id
* ``plots/confusion/<id>.csv|png`` long-form confusion rows for DVC's ``confusion`` template
* ``plots/per_class/<id>.csv``     per-class precision/recall/F1/support

The union of the two metric dicts is what is logged to the MLflow run, so DVC and MLflow
never drift apart.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.io import atomic_path, read_json, write_csv, write_json

METRICS_DIRS = {"classical": Path("metrics/classical"), "deep": Path("metrics/cnn")}
CONFUSION_DIR = Path("plots/confusion")
PER_CLASS_DIR = Path("plots/per_class")


def scores_path(approach: str, model_id: str) -> Path:
    return METRICS_DIRS[approach] / f"{model_id}.json"


def run_info_path(approach: str, model_id: str) -> Path:
    return METRICS_DIRS[approach] / f"{model_id}.run.json"


def record_model(*, approach: str, model_id: str, y_true: np.ndarray, y_pred: np.ndarray,
                 class_names: list[str], param_count: int, model_path: Path,
                 run_info: Mapping[str, Any], extra_scores: Mapping[str, Any] | None = None) -> dict:
    """Evaluate test predictions, write the model's metrics and plots, log them to the active run.

    ``run_info`` holds the run-dependent values (fit_seconds, predict_images_per_s, device,
    identity tags ...); the active MLflow run's id is added to it here.
    """
    import mlflow

    from models.evaluate import classification_metrics, confusion_long_rows, plot_confusion
    from pipeline.tracking import log_metrics

    metrics = classification_metrics(y_true, y_pred, class_names)
    scores = {
        "test_accuracy": metrics["test_accuracy"],
        "macro_f1": metrics["macro_f1"],
        "param_count": int(param_count),
        "model_bytes": int(Path(model_path).stat().st_size),
        **(extra_scores or {}),
    }
    run = mlflow.active_run()
    info = {**run_info, "model": model_id, "approach": approach,
            "mlflow_run_id": run.info.run_id, "mlflow_experiment_id": run.info.experiment_id}

    write_csv(CONFUSION_DIR / f"{model_id}.csv", confusion_long_rows(y_true, y_pred, class_names),
              ["actual", "predicted"])
    per_class = [{"class": name, **values} for name, values in metrics["per_class"].items()]
    write_csv(PER_CLASS_DIR / f"{model_id}.csv", per_class, ["class", "precision", "recall", "f1", "support"])
    figure = plot_confusion(metrics["confusion"], class_names,
                            f"{model_id}: test accuracy {scores['test_accuracy']:.4f}")
    with atomic_path(CONFUSION_DIR / f"{model_id}.png") as tmp:
        figure.savefig(tmp, format="png", dpi=110)

    log_metrics(scores)
    log_metrics(info)
    mlflow.log_artifact(str(CONFUSION_DIR / f"{model_id}.png"), artifact_path="plots")
    mlflow.log_artifact(str(CONFUSION_DIR / f"{model_id}.csv"), artifact_path="plots")
    mlflow.log_artifact(str(PER_CLASS_DIR / f"{model_id}.csv"), artifact_path="plots")

    write_json(scores_path(approach, model_id), scores)
    write_json(run_info_path(approach, model_id), info)
    return {**scores, **info}


def read_model(approach: str, model_id: str) -> dict:
    """One model's scores and run info merged (what ``compare`` reads)."""
    return {**read_json(scores_path(approach, model_id)), **read_json(run_info_path(approach, model_id))}

"""What every model stage records about a model, classical or deep, and how ``compare`` reads it.

A model's scores (``metrics/<dir>/<id>.json``, :func:`model_scores`) depend only on its
predictions, params and data -- the same seed gives the same bytes: test_accuracy,
balanced_accuracy, macro_f1 and their intervals (``*_ci_low``/``*_ci_high``),
val_balanced_accuracy, n_test, score_kind, param_count, model_bytes, the stage's extra
scores (val_accuracy, ...) and the summary over the seeds of
``evaluation.repeats`` (:func:`comparison.repeats.repeat_summary`). What varies run to run
(timings, device, MLflow run id) goes to a second dict; :func:`model_row` merges both into one
leaderboard row.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from comparison.errors import ComparisonError
from comparison.predictions import Predictions
from comparison.repeats import REPEAT_KEYS, repeat_summary
from models.evaluate import DECIMALS  # every score in the metrics files is rounded alike

REQUIRED = ("test_accuracy", "macro_f1", "param_count")
INTERVAL_SCORES = ("test_accuracy", "macro_f1", "balanced_accuracy")  # the scores with a ``_ci_low/high``
INTERVAL_KEYS = tuple(f"{name}_ci_{end}" for name in INTERVAL_SCORES for end in ("low", "high"))


def score_intervals(test: Predictions, n_classes: int, *, seed: int, confidence: float, resamples: int,
                    scores: Sequence[str] = INTERVAL_SCORES) -> dict[str, float]:
    """The ``confidence`` intervals of a model's test ``scores``, rounded to 6 decimals:
    ``test_accuracy_ci_low/high`` (Wilson score interval), ``macro_f1_ci_low/high`` and
    ``balanced_accuracy_ci_low/high`` (percentile bootstrap over the test images, ``resamples``
    draws seeded with ``seed``)."""
    from models.statistics import balanced_accuracy_interval, bootstrap_interval, macro_f1, wilson_interval

    intervals = {}
    if "test_accuracy" in scores:
        intervals["test_accuracy"] = wilson_interval(int(np.count_nonzero(test.correct)), len(test), confidence)
    if "macro_f1" in scores:
        intervals["macro_f1"] = bootstrap_interval(test.y_true, test.y_pred, lambda t, p: macro_f1(t, p, n_classes),
                                                   resamples=resamples, seed=seed, confidence=confidence)
    if "balanced_accuracy" in scores:
        intervals["balanced_accuracy"] = balanced_accuracy_interval(
            test.y_true, test.y_pred, n_classes, resamples=resamples, seed=seed, confidence=confidence)
    return {f"{name}_ci_{end}": round(float(value), DECIMALS)
            for name, (low, high) in intervals.items() for end, value in (("low", low), ("high", high))}


def check_predictions(model_id: str, test: Predictions, val: Predictions, n_classes: int) -> None:
    """``ValueError`` unless both parts have one score column per class, of one kind."""
    for part, p in (("test", test), ("val", val)):
        if np.ndim(p.scores) != 2 or np.shape(p.scores)[1] != n_classes:
            raise ValueError(f"{model_id} {part}: scores must have one column per class "
                             f"({n_classes}); got shape {np.shape(p.scores)}")
    if test.score_kind != val.score_kind:
        raise ValueError(f"{model_id}: test and val scores differ in kind ({test.score_kind} / {val.score_kind})")


def model_scores(metrics: Mapping[str, Any], test: Predictions, val: Predictions, *, n_classes: int,
                 param_count: int, model_bytes: int, seed: int, confidence: float, resamples: int,
                 extra_scores: Mapping[str, Any] | None = None,
                 repeats: Sequence[Mapping[str, float]] = ()) -> dict:
    """A model's metrics file: ``metrics`` (:func:`models.evaluate.classification_metrics` of its
    test predictions) with the intervals at ``confidence`` (:func:`score_intervals`), the balanced
    accuracy of its ``val`` predictions, ``n_test``, ``score_kind``, its size, ``extra_scores``
    and the summary over its seeds: this model's own (``seed``) first, then ``repeats``
    (:data:`comparison.repeats.PER_SEED_KEYS` of each extra seed)."""
    from models.statistics import balanced_accuracy

    scores = {
        "test_accuracy": metrics["test_accuracy"],
        "balanced_accuracy": metrics["balanced_accuracy"],
        "macro_f1": metrics["macro_f1"],
        "val_balanced_accuracy": round(balanced_accuracy(val.y_true, val.y_pred, n_classes), DECIMALS),
        **score_intervals(test, n_classes, seed=seed, confidence=confidence, resamples=resamples),
        "n_test": len(test),
        "score_kind": test.score_kind,
        "param_count": int(param_count),
        "model_bytes": int(model_bytes),
        **(extra_scores or {}),
    }
    own = {"seed": seed, "test_accuracy": scores["test_accuracy"], "macro_f1": scores["macro_f1"],
           "val_accuracy": scores.get("val_accuracy", float(np.mean(val.correct)))}
    return scores | repeat_summary([own, *repeats])


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
        raise ComparisonError(f"{where}: missing or non-numeric {', '.join(bad)}; {fix}")
    split = data.get("split_sha256")
    if not isinstance(split, str) or not split:
        raise ComparisonError(f"{where}: no split_sha256 recorded; {fix}")
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
        "balanced_accuracy": _number(data.get("balanced_accuracy")),  # None: written before it was recorded
        **{key: _number(data.get(key)) for key in INTERVAL_KEYS},  # None when not recorded
        "n_test": None if n_test is None else int(n_test),
        "score_kind": str(data.get("score_kind") or ""),
        "val_accuracy": _number(data.get("val_accuracy")),
        "val_balanced_accuracy": _number(data.get("val_balanced_accuracy")),
        "repeats": None if repeats is None else int(repeats),  # None: written before repeats existed
        **{key: _number(data.get(key)) for key in REPEAT_KEYS},
        "per_seed": dict(per_seed) if isinstance(per_seed, Mapping) else None,
        "param_count": int(data["param_count"]),
        "model_bytes": None if model_bytes is None else int(model_bytes),
        "fit_seconds": _number(data.get("fit_seconds")),
        **{key: _number(data.get(key)) for key in ("epochs_run", "best_epoch")},  # CNNs' budget; None: classical
        "predict_images_per_s": _number(data.get("predict_images_per_s")),
        "dataset": str(data.get("dataset") or ""),
        "split_sha256": split,
        "mlflow_run_id": str(data.get("mlflow_run_id") or ""),
    }

"""Stochastic models retrained with several seeds (params.yaml ``evaluation.repeats``, issue 11).

Stochastic are: every CNN (initialisation, shuffling); a classical model whose extractor takes
``random_state`` (the SIFT codebook) or whose classifier is registered ``stochastic``
(``models.classifiers``: random forest, linear SVM). Such a model is trained with
:func:`models.statistics.repeat_seeds` ``(seed, repeats)``; a deterministic one once.

The first seed is ``seed`` itself: its model, per-image predictions and metrics are the
stage's outputs, byte for byte those of a single run. Each extra seed only adds its scores
(:func:`seed_scores`) to the model's metrics (:func:`repeat_summary`, written by
:func:`pipeline.results.record_model`) and one MLflow run nested under the model's run
(:func:`pipeline.tracking.log_seed_run`). A stochastic extractor's extra-seed matrices are stored by the features
stage next to the first seed's, under :func:`matrix_key`.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from models.statistics import macro_f1, repeat_seeds

DECIMALS = 6  # as every score in the metrics files
PER_SEED_KEYS = ("seed", "test_accuracy", "val_accuracy", "macro_f1")
REPEAT_KEYS = ("test_accuracy_mean", "test_accuracy_sd", "val_accuracy_mean", "macro_f1_mean", "macro_f1_sd")


def seeds(seed: int, repeats: int, stochastic: bool = True) -> tuple[int, ...]:
    """The seeds a model is trained with: ``repeat_seeds(seed, repeats)``, or ``(seed,)`` when
    it is deterministic."""
    return repeat_seeds(seed, repeats if stochastic else 1)


def extractor_is_stochastic(name: str) -> bool:
    """Whether features@``name`` depends on the seed: its extractor takes ``random_state``."""
    from features import get_extractor

    return "random_state" in get_extractor(name).parameters()


def classical_is_stochastic(feature: str, classifier: str) -> bool:
    from models import classifiers

    return classifiers.get(classifier).stochastic or extractor_is_stochastic(feature)


def matrix_key(part: str, seed: int) -> str:
    """The features file's key of ``part``'s matrix fitted with an extra ``seed``
    (``x_train__seed2684470948``); the plain ``x_<part>`` is the first seed's."""
    return f"x_{part}__seed{seed}"


def seed_scores(seed: int, y_test: np.ndarray, y_pred: np.ndarray, val_accuracy: float,
                n_classes: int) -> dict[str, float]:
    """One seed's :data:`PER_SEED_KEYS`: test accuracy and macro-F1 of its test predictions,
    its validation accuracy, rounded to 6 decimals."""
    y_test, y_pred = np.asarray(y_test), np.asarray(y_pred)
    return {"seed": int(seed), "test_accuracy": round(float(np.mean(y_test == y_pred)), DECIMALS),
            "val_accuracy": round(float(val_accuracy), DECIMALS),
            "macro_f1": round(float(macro_f1(y_test, y_pred, n_classes)), DECIMALS)}


def repeat_summary(per_seed: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """The metrics keys of a model's seeds (the model's own first): ``repeats`` (seeds
    trained), :data:`REPEAT_KEYS` (mean and sample sd, ddof=1, 0.0 for one seed; validation
    accuracy: the mean only) and ``per_seed`` (:data:`PER_SEED_KEYS` -> list in seed order),
    all of the per-seed values rounded to 6 decimals."""
    columns = {key: [int(row[key]) if key == "seed" else round(float(row[key]), DECIMALS) for row in per_seed]
               for key in PER_SEED_KEYS}
    summary: dict[str, Any] = {"repeats": len(per_seed)}
    for key in REPEAT_KEYS:
        name, _, stat = key.rpartition("_")
        values = np.asarray(columns[name], dtype=np.float64)
        value = values.mean() if stat == "mean" else (values.std(ddof=1) if len(values) > 1 else 0.0)
        summary[key] = round(float(value), DECIMALS)
    return summary | {"per_seed": columns}

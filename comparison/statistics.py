"""The statistics behind the leaderboard and the verdict.

Selection on validation, verdict on test: the best model of each approach is the one with
the highest validation accuracy (:func:`comparison.leaderboard.select_best`), and only those
two are compared on the test images, paired image by image
(:func:`models.statistics.compare_paired`: a paired bootstrap interval of the accuracy
difference and McNemar's exact test, as Dietterich 1998 recommends for models trained once
on one split). A difference counts as significant exactly when its interval excludes 0 and
McNemar's p is below ``evaluation.alpha`` (both must agree: with few discordant images the
percentile bootstrap interval is too narrow); the same rule marks the leaderboard's models
that are not significantly worse than the top-ranked one.

With balanced accuracy as the metric (``evaluation.metric``, :mod:`comparison.metrics`) the
same rule applies to the difference of balanced accuracies: its paired bootstrap interval and
a paired permutation test, McNemar's with each image weighed by its class
(:func:`models.statistics.compare_paired_balanced`); selection is on validation balanced
accuracy and the leaderboard is ranked by test balanced accuracy.

Everything here works on the per-image test predictions of every compared model (all must
have predicted the same test images), leaderboard rows and
:class:`models.statistics.PairedComparison` objects; nothing is read or written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from comparison.errors import ComparisonError
from comparison.predictions import Predictions
from comparison.results import INTERVAL_SCORES, score_intervals
from models.evaluate import DECIMALS
from models.statistics import (PairedComparison, balanced_accuracy, compare_paired, compare_paired_balanced,
                               mcnemar_exact)

ACCURACY_TOLERANCE = 2e-6  # recorded accuracies are rounded to 6 decimals


@dataclass(frozen=True)
class Settings:
    """How every interval and test is computed: ``evaluation`` in params.yaml, seeds = ``seed``."""

    confidence: float = 0.95
    resamples: int = 2000
    alpha: float = 0.05
    seed: int = 0
    metric: str = "accuracy"  # comparison.metrics.METRICS: what compare_models compares

    @classmethod
    def from_config(cls, cfg: Any, metric: str = "accuracy") -> "Settings":
        ev = cfg.evaluation
        return cls(float(ev.confidence), int(ev.bootstrap_resamples), float(ev.alpha), int(cfg.seed), metric)

    def compare(self, correct_a: np.ndarray, correct_b: np.ndarray) -> PairedComparison:
        """Accuracy: paired bootstrap interval and McNemar's exact test."""
        return compare_paired(correct_a, correct_b, resamples=self.resamples, seed=self.seed,
                              confidence=self.confidence, alpha=self.alpha)

    def compare_models(self, a: Predictions, b: Predictions) -> PairedComparison:
        """Two models' predictions on the same test images, compared on :attr:`metric`."""
        if self.metric == "accuracy":
            return self.compare(a.correct, b.correct)
        return compare_paired_balanced(a.y_true, a.y_pred, b.y_pred, a.scores.shape[1], resamples=self.resamples,
                                       seed=self.seed, confidence=self.confidence, alpha=self.alpha)

    @property
    def level(self) -> str:
        """``95 %``: the confidence as printed."""
        return f"{100 * self.confidence:g} %"


@dataclass(frozen=True, eq=False)
class TestImages:
    """Every compared model's predictions on the same test images."""

    predictions: Mapping[str, Predictions]

    @property
    def n(self) -> int:
        return len(next(iter(self.predictions.values())))

    def correct(self, model: str) -> np.ndarray:
        return self.predictions[model].correct

    def class_counts(self) -> np.ndarray:
        """Test images per class (every score column counted)."""
        first = next(iter(self.predictions.values()))
        return np.bincount(first.y_true, minlength=first.scores.shape[1])


def test_images(rows: Sequence[Mapping[str, Any]], predictions: Mapping[str, Predictions], *,
                where: Callable[[str], str], fix: Callable[[Mapping[str, Any]], str]) -> TestImages:
    """The test predictions of every row, checked: the same images with the same labels, and
    the accuracy each model's metrics record (else the files are from different runs).
    ``where(model)`` names a model's predictions file, ``fix(row)`` the stage that rewrites it."""
    first = None
    for row in rows:
        model = row["model"]
        p = predictions[model]
        if first is None:
            first = (model, p)
        elif not (np.array_equal(p.index, first[1].index) and np.array_equal(p.y_true, first[1].y_true)):
            raise ComparisonError(f"{where(model)}: not the same test images (index, y_true) as "
                                  f"{where(first[0])}; rerun `dvc repro` so every model predicts the current split")
        accuracy = float(np.mean(p.correct))
        if abs(accuracy - row["test_accuracy"]) > ACCURACY_TOLERANCE:
            raise ComparisonError(f"{where(model)}: accuracy {accuracy:.6f}, but {model}'s recorded test_accuracy is "
                                  f"{row['test_accuracy']:.6f}; rerun `dvc repro {fix(row)}`")
    return TestImages({row["model"]: predictions[row["model"]] for row in rows})


def scored(rows: Sequence[Mapping[str, Any]], images: TestImages, settings: Settings) -> list[dict]:
    """The rows plus ``n_test`` and what older metrics files lack, computed here as the train
    stage does: the intervals (test accuracy, macro-F1, balanced accuracy) and the test
    balanced accuracy (the validation one needs the train stage: :func:`comparison.leaderboard.select_best`)."""
    out = []
    for row in rows:
        row = dict(row)
        p = images.predictions[row["model"]]
        row["n_test"] = len(p)
        if row.get("balanced_accuracy") is None:
            row["balanced_accuracy"] = round(balanced_accuracy(p.y_true, p.y_pred, p.scores.shape[1]), DECIMALS)
        missing = [name for name in INTERVAL_SCORES if any(row.get(f"{name}_ci_{end}") is None
                                                            for end in ("low", "high"))]
        if missing:
            row.update(score_intervals(p, p.scores.shape[1], seed=settings.seed, confidence=settings.confidence,
                                       resamples=settings.resamples, scores=missing))
        out.append(row)
    return out


def with_statistics(rows: Sequence[Mapping[str, Any]], images: TestImages, settings: Settings) -> list[dict]:
    """Ranked rows (on the metric of ``settings``), :func:`scored`, plus against the top-ranked
    model ``near_top`` ("yes" when not significantly worse on that metric) and ``p_value_vs_top``."""
    out = []
    top = rows[0]["model"] if rows else None
    for row in scored(rows, images, settings):
        if row["model"] == top:
            row["near_top"], row["p_value_vs_top"] = "yes", None
        else:
            comparison = settings.compare_models(images.predictions[top], images.predictions[row["model"]])
            row["near_top"] = "" if comparison.significant else "yes"
            row["p_value_vs_top"] = float(f"{comparison.p_value:.6g}")
        out.append(row)
    return out


def pairwise_pvalues(models: Sequence[str], images: TestImages) -> np.ndarray:
    """McNemar's exact p-value of every pair of ``models`` (symmetric; NaN on the diagonal)."""
    k = len(models)
    matrix = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(i + 1, k):
            matrix[i, j] = matrix[j, i] = mcnemar_exact(images.correct(models[i]), images.correct(models[j]))[2]
    return matrix

"""Every figure ``compare`` writes, by name, from the ranked rows and what they need."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from comparison import budget, confusion, plots
from comparison.leaderboard import subtitle
from comparison.statistics import TestImages, pairwise_pvalues

PLOT_NAMES = ("accuracy_vs_params", "accuracy_bars", "confusion_best", "training_curves", "pairwise_pvalues",
              "budget_curve")
PAIRWISE_MODELS = 8  # the p-value heat map shows the top models by test accuracy


def compare_figures(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
                    confusions: Mapping[str, tuple[Sequence[str], Sequence[str]]], class_names: Sequence[str],
                    histories: Mapping[str, Mapping[str, np.ndarray]], images: TestImages, alpha: float,
                    budget_points: Sequence[Mapping[str, Any]] = (), level: str = "95 %") -> dict:
    """:data:`PLOT_NAMES` -> Figure. ``confusions``: (actual, predicted) class names of the test
    images of :func:`comparison.confusion.confusion_models`' models; ``histories``: each CNN's;
    ``budget_points``: :func:`comparison.budget.budget_points` of the rows and histories."""
    title = subtitle(summary)
    chosen = [r for r in rows if r["model"] in confusions]
    classes = confusion.class_order({c for pair in confusions.values() for names in pair for c in names}, class_names)
    panels = [(r, confusion.confusion_counts(*confusions[r["model"]], classes)) for r in chosen]
    top = list(rows[:PAIRWISE_MODELS])
    return {
        "accuracy_vs_params": plots.plot_accuracy_vs_params(rows, title),
        "accuracy_bars": plots.plot_accuracy_bars(rows, title),
        "confusion_best": confusion.plot_confusion_best(panels, classes, title),
        "training_curves": plots.plot_training_curves(histories, title),
        "pairwise_pvalues": plots.plot_pairwise_pvalues(top, pairwise_pvalues([r["model"] for r in top], images),
                                                        title, alpha),
        "budget_curve": budget.plot_budget_curve(budget_points, title, level),
    }

"""A small compared run for the explain stage's tests: the synthetic split of
``helpers.make_split`` (3 classes x 10 test images), two models' predictions with known
mistakes, the ``summary.json`` compare would write for them, a leaderboard and one plot.

Test positions (classes 0, 1, 2 hold positions 0-9, 10-19, 20-29):
the classical model is wrong on 0 and 11, the deep model on 5, 11, 12 and 25; so only the
classical one is right on 5, 12, 25, only the deep one on 0, both are wrong on 11.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from helpers import make_split, write_model_predictions

CLASSICAL, DEEP = "hog-logreg", "lenet5"
CLASSICAL_WRONG, DEEP_WRONG = (0, 11), (5, 11, 12, 25)
ONLY_CLASSICAL_RIGHT, ONLY_DEEP_RIGHT = [5, 12, 25], [0]


def wrong_at(y_true: np.ndarray, positions) -> np.ndarray:
    y_pred = y_true.copy()
    y_pred[list(positions)] = (y_true[list(positions)] + 1) % 3
    return y_pred


def make_explain_run(root: Path) -> dict:
    """Write the run's inputs under ``root`` (the current directory); returns the summary."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from comparison import leaderboard, statistics, verdict
    from pipeline.io import save_split

    split = make_split()
    save_split(root / "data/prepared/split.npz", split)
    y = split.y["test"]
    preds = {CLASSICAL: wrong_at(y, CLASSICAL_WRONG), DEEP: wrong_at(y, DEEP_WRONG)}
    for model, y_pred in preds.items():
        write_model_predictions(model, y, y_pred, 3, parts=("test",))
        write_model_predictions(model, split.y["val"], split.y["val"], 3, parts=("val",))
    rows = [{"model": m, "approach": a, "val_accuracy": 1.0, "test_accuracy": float((preds[m] == y).mean()),
             "param_count": p, "fit_seconds": f, "dataset": split.dataset, "split_sha256": split.sha256, "rank": r,
             "test_accuracy_ci_low": 0.8, "test_accuracy_ci_high": 0.99}
            for m, a, p, f, r in ((CLASSICAL, "classical", 1000, 0.1, 1), (DEEP, "deep", 60000, 5.0, 2))]
    comparison = statistics.Settings(resamples=200).compare(preds[DEEP] == y, preds[CLASSICAL] == y)
    summary = leaderboard.build_summary(rows, verdict.verdict_fields(comparison))
    (root / "reports/plots").mkdir(parents=True, exist_ok=True)
    (root / "reports/summary.json").write_text(json.dumps(summary), encoding="utf-8")
    columns = list(rows[0])
    (root / "reports/leaderboard.csv").write_text(
        "\n".join([",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]) + "\n", encoding="utf-8")
    fig = Figure(figsize=(3, 2))
    fig.subplots().bar([0, 1], [r["test_accuracy"] for r in rows])
    fig.savefig(root / "reports/plots/accuracy_bars.png")
    return summary

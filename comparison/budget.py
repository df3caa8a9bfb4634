"""The budget curve: for a given training budget in seconds, which approach is ahead?

Both approaches as trained on the full training set, nothing trained again:

* each CNN after every epoch of the run ``train_cnn`` made (its history): x = the cumulative
  epoch seconds, y = that epoch's validation and test accuracy;
* each classical model at x = its ``fit_seconds`` (the classifier's fit, or grid search and
  refit; the features' extraction is not counted), y = its validation and test accuracy.

Every test accuracy carries its Wilson score interval (:func:`models.statistics.wilson_interval`,
the leaderboard's) at ``evaluation.confidence``. The per-epoch test accuracies are for this
plot only: a CNN's kept epoch is chosen on validation by early stopping, and its leaderboard
score is that epoch's (marked ``kept``).

Pure: rows and histories in (:mod:`pipeline.read_results` reads them), points, CSV text and a
matplotlib Figure out.
"""
from __future__ import annotations

import csv
import io
import math
from typing import Any, Mapping, Sequence

import numpy as np

from comparison.plots import COLOURS, CURVE_COLOURS, LABEL_ITERATIONS, _marker_boxes, figure
from models.statistics import wilson_interval

COLUMNS = ("approach", "model", "epoch", "seconds", "val_accuracy", "test_accuracy", "test_accuracy_ci_low",
           "test_accuracy_ci_high", "kept")


def _finite(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _point(approach: str, model: str, epoch: int | None, seconds: Any, val: Any, test: Any, n_test: Any,
           confidence: float, kept: bool) -> dict:
    seconds, val, test = _finite(seconds), _finite(val), _finite(test)
    low = high = None
    if test is not None and n_test:
        low, high = wilson_interval(int(round(test * n_test)), int(n_test), confidence)
    return {"approach": approach, "model": model, "epoch": epoch,
            "seconds": None if seconds is None else round(seconds, 4),
            "val_accuracy": val, "test_accuracy": test,
            "test_accuracy_ci_low": None if low is None else round(low, 6),
            "test_accuracy_ci_high": None if high is None else round(high, 6), "kept": kept}


def budget_points(rows: Sequence[Mapping[str, Any]], histories: Mapping[str, Mapping[str, np.ndarray]],
                  confidence: float = 0.95) -> list[dict]:
    """The curve's points (:data:`COLUMNS`): the classical models by fit seconds (a model with
    none recorded is left out), then each CNN of ``histories`` (``{arch: read_history(arch)}``)
    epoch by epoch, seconds summed over its epochs; ``kept`` marks the CNN's ``best_epoch`` (its
    row's) and every classical model. Intervals need the row's ``n_test`` (None without it)."""
    classical = sorted((r for r in rows if r["approach"] == "classical" and _finite(r.get("fit_seconds")) is not None),
                       key=lambda r: (r["fit_seconds"], r["model"]))
    points = [_point("classical", r["model"], None, r["fit_seconds"], r.get("val_accuracy"), r["test_accuracy"],
                     r.get("n_test"), confidence, kept=True) for r in classical]
    deep = {r["model"]: r for r in rows if r["approach"] == "deep"}
    for arch, history in histories.items():
        row = deep.get(arch, {})
        best = row.get("best_epoch")
        seconds = np.cumsum(np.asarray(history["epoch_seconds"], dtype=float))
        for i, epoch in enumerate(np.asarray(history["epoch"], dtype=int)):
            points.append(_point("deep", arch, int(epoch), seconds[i], history["val_accuracy"][i],
                                 history["test_accuracy"][i], row.get("n_test"), confidence,
                                 kept=best is not None and int(epoch) == int(best)))
    return points


def csv_text(points: Sequence[Mapping[str, Any]]) -> str:
    """``budget_curve.csv``: :data:`COLUMNS`, a missing value as an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for p in points:
        writer.writerow(["" if p[c] is None else str(p[c]).lower() if isinstance(p[c], bool) else p[c]
                         for c in COLUMNS])
    return out.getvalue()


def frontier(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """The classical models no faster one matches or beats on test accuracy (fastest first)."""
    best, names = -1.0, []
    for p in points:  # budget_points lists the classical ones by fit seconds
        if p["approach"] == "classical" and p["seconds"] is not None and p["test_accuracy"] > best:
            best = p["test_accuracy"]
            names.append(p["model"])
    return names


def _pct(points: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if p[key] is None else 100 * p[key] for p in points], dtype=float)


def plot_budget_curve(points: Sequence[Mapping[str, Any]], subtitle: str, level: str = "95 %"):
    """Accuracy against training seconds (log scale): one line per CNN (test solid with its
    interval as a band, validation dashed, a star at the kept epoch), one point per classical
    model (test accuracy with its interval as an error bar); the classical models of the
    :func:`frontier` are labelled (placed by adjustText, as in the accuracy-vs-parameters plot)."""
    from adjustText import adjust_text
    from matplotlib.lines import Line2D

    fig = figure(10, 6.5)
    ax = fig.add_subplot()
    handles = []
    classical = [p for p in points if p["approach"] == "classical" and p["seconds"] is not None]
    if classical:
        x, y = np.array([p["seconds"] for p in classical]), _pct(classical, "test_accuracy")
        low, high = _pct(classical, "test_accuracy_ci_low"), _pct(classical, "test_accuracy_ci_high")
        ax.errorbar(x, y, yerr=[np.nan_to_num(y - low), np.nan_to_num(high - y)], fmt="o", color=COLOURS["classical"],
                    ecolor=COLOURS["classical"], elinewidth=1.0, capsize=3, alpha=0.8, markersize=6, zorder=3)
        labels = [(p["model"], xi, yi) for p, xi, yi in zip(classical, x, y) if p["model"] in set(frontier(points))]
        handles.append(Line2D([], [], ls="", marker="o", color=COLOURS["classical"],
                              label="classical: test accuracy at fit seconds (labelled: fastest to each level)"))
    archs = list(dict.fromkeys(p["model"] for p in points if p["approach"] == "deep"))
    for i, arch in enumerate(archs):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        mine = [p for p in points if p["model"] == arch and p["seconds"] is not None]
        x = np.array([p["seconds"] for p in mine], dtype=float)
        test, val = _pct(mine, "test_accuracy"), _pct(mine, "val_accuracy")
        ax.fill_between(x, _pct(mine, "test_accuracy_ci_low"), _pct(mine, "test_accuracy_ci_high"), color=colour,
                        alpha=0.15, lw=0)
        ax.plot(x, test, color=colour, lw=1.8, marker=".", label=f"{arch}: test accuracy after each epoch")
        ax.plot(x, val, color=colour, lw=1.2, ls="--", label=f"{arch}: validation accuracy")
        kept = [j for j, p in enumerate(mine) if p["kept"]]
        if kept:
            ax.plot(x[kept], test[kept], ls="", marker="*", markersize=13, color=colour, markeredgecolor="white",
                    zorder=4, label=f"{arch}: kept epoch (chosen on validation)")
    handles += ax.get_legend_handles_labels()[0]
    ax.set_xscale("log")
    ax.margins(x=0.08)  # room for the fastest model's label
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", axis="x", alpha=0.12)
    ax.set_xlabel("training seconds (log scale): CNN = cumulative epoch seconds, classical = fit seconds")
    ax.set_ylabel("accuracy (%)")
    if points:
        fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=2, frameon=False)
    else:
        ax.text(0.5, 0.5, "no model with recorded training seconds", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"Accuracy vs. training budget (bands and bars: {level} Wilson interval of test accuracy)\n{subtitle}")
    if classical and labels:
        fig.canvas.draw()
        fig.set_layout_engine("none")  # adjustText moves labels in the pixels that are saved
        texts = [ax.text(xi, yi, name, fontsize=7, color=COLOURS["classical"], ha="center", va="center", zorder=5)
                 for name, xi, yi in labels]
        xs, ys = np.array([p["seconds"] for p in classical]), _pct(classical, "test_accuracy")
        adjust_text(texts, x=xs, y=ys, objects=_marker_boxes(ax, xs, ys), ax=ax, iter_lim=LABEL_ITERATIONS,
                    expand=(1.15, 1.5), ensure_inside_axes=True, arrowprops=dict(arrowstyle="-", color="0.55", lw=0.6))
    return fig

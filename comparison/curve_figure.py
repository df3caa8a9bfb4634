"""The learning curve's figure (:mod:`comparison.curves` holds its data)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from comparison.plots import COLOURS, MARKERS, figure


def plot_learning_curve(rows: Sequence[Mapping[str, Any]], result: Mapping[str, Any], subtitle: str, level: str):
    """Test accuracy against training images (log scale), one line per model with its Wilson
    band; the crossover's bracket shaded; filled markers where the pair differs significantly."""
    fig = figure(8, 5)
    ax = fig.subplots()
    significant = {n for n, leader in zip(result["sizes"], result["leaders"]) if leader}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        approach = mine[0]["approach"]
        n = np.array([r["n_train"] for r in mine], dtype=float)
        acc, low, high = (100 * np.array([r[k] for r in mine]) for k in ("test_accuracy", "ci_low", "ci_high"))
        colour = COLOURS[approach]
        ax.fill_between(n, low, high, color=colour, alpha=0.18, lw=0)
        ax.plot(n, acc, color=colour, lw=1.8, label=f"{model} ({approach})")
        filled = np.array([x in significant for x in n])
        ax.scatter(n[filled], acc[filled], color=colour, marker=MARKERS[approach], zorder=3)
        ax.scatter(n[~filled], acc[~filled], facecolor="white", edgecolor=colour, marker=MARKERS[approach], zorder=3)
    if result.get("status") == "crossover":
        ax.axvspan(*result["bracket"], color="#999999", alpha=0.2, lw=0, label="crossover bracket")
    ax.set_xscale("log")
    ax.set_xticks(result["sizes"], [f"{n:,}" for n in result["sizes"]])
    ax.minorticks_off()
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Learning curves: bands = {level} Wilson intervals; filled markers = significant difference "
                 f"(McNemar p < {result['alpha']:g})\n{subtitle}", fontsize=9)
    return fig

"""Confusion matrices: which models ``compare`` draws them for, their counts, and the figures
(the best models' panel of ``compare``; one model's own PNG is :mod:`comparison.model_plot`)."""
from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from comparison.plots import COLOURS, _present, figure

def confusion_models(rows: Sequence[Mapping[str, Any]], count: int = 4,
                     best: Sequence[str] | None = None) -> list[Mapping[str, Any]]:
    """The ``best`` models (ids; default: the top-ranked of each approach), then the next best
    overall, up to ``count``, by rank."""
    if best is None:
        chosen = [next(r for r in rows if r["approach"] == a) for a in _present(rows)]
    else:
        chosen = [r for r in rows if r["model"] in set(best)]
    chosen += [r for r in rows if r not in chosen][:max(0, count - len(chosen))]
    return sorted(chosen, key=lambda r: rows.index(r))


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def class_order(seen: Iterable[str], known: Sequence[str] = ()) -> list[str]:
    """``known`` (the prepared split's class order) when it covers ``seen``, else ``seen`` sorted
    naturally (``2`` before ``10``)."""
    seen = set(seen)
    if known and seen <= set(known):
        return list(known)
    return sorted(seen, key=_natural_key)


def confusion_counts(actual: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Counts, rows actual and columns predicted, in the order of ``classes``."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(list(actual), list(predicted), labels=list(classes))


def plot_confusion_best(panels: Sequence[tuple[Mapping[str, Any], np.ndarray]], classes: Sequence[str],
                        subtitle: str):
    """One confusion heat map (:func:`models.evaluate.plot_confusion`) per ``(row, counts)``,
    titled with rank and accuracy in the approach's colour, and one shared colour bar."""
    from models.evaluate import plot_confusion

    k = len(classes)
    ncols = 1 if len(panels) == 1 else 2
    nrows = math.ceil(len(panels) / ncols)
    panel = max(3.6, 0.36 * k + 1.4)
    fig = figure(panel * ncols + 1.0, panel * nrows + 0.9)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (row, counts) in zip(axes.flat, panels):
        plot_confusion(counts, classes, f"#{row['rank']} {row['model']} ({row['approach']})\n"
                                        f"test accuracy {100 * row['test_accuracy']:.2f} %", ax=ax)
        ax.title.set_color(COLOURS[row["approach"]])
        ax.title.set_fontsize(10)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if panels:
        fig.colorbar(axes.flat[0].images[0], ax=axes, shrink=0.6, label="fraction of the actual class")
    fig.suptitle(f"Confusion matrices of the best models (test split)\n{subtitle}")
    return fig


"""Evaluation shared by classical and CNN models: metrics, confusion data, plot, throughput.

Pure functions: nothing here writes files or talks to MLflow. scikit-learn and
matplotlib are imported inside the functions that need them, so importing this module
stays cheap.
"""
from __future__ import annotations

from time import perf_counter
from typing import Any, Callable, Sequence

import numpy as np

from models.errors import InputError, ParameterError

DECIMALS = 6
MAX_ANNOTATED_CLASSES = 15  # cells with a count written in them, per side


def _labels(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer label arrays of equal, non-zero length with values in ``range(n_classes)``."""
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.size == 0 or y_true.size != y_pred.size:
        raise InputError(f"need equally long, non-empty label arrays; got {y_true.size} true, {y_pred.size} predicted")
    for name, y in (("true", y_true), ("predicted", y_pred)):
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
            raise InputError(f"{name} labels must be integers in [0, {n_classes - 1}]; "
                             f"got {np.unique(y)[:10].tolist()}")
    return y_true, y_pred


def _round(x: float) -> float:
    """A plain float rounded so that JSON output is stable byte for byte."""
    return round(float(x), DECIMALS)


def classification_metrics(y_true, y_pred, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1/support and the
    confusion matrix.

    Every class in ``class_names`` counts, present in the data or not: ill-defined
    precision/recall/F1 are 0 (``zero_division=0``), ``macro_f1`` is the unweighted mean of
    the per-class F1 over all ``len(class_names)`` classes, and ``confusion`` has one row
    (actual) and one column (predicted) per class. ``balanced_accuracy`` is the mean recall of
    the classes present in ``y_true`` (scikit-learn's ``balanced_accuracy_score``, without its
    warning about predicted classes that are absent). Floats are rounded to 6 decimals.

    Raises:
        InputError: label arrays of different or zero length, or labels out of range.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(class_names)))
    y_true, y_pred = _labels(y_true, y_pred, len(labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = {
        name: {"precision": _round(p), "recall": _round(r), "f1": _round(f), "support": int(s)}
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
    }
    return {
        "test_accuracy": _round(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _round(np.mean(recall[support > 0])),
        "macro_f1": _round(np.mean(f1)),
        "per_class": per_class,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def confusion_long_rows(y_true, y_pred, class_names: Sequence[str]) -> list[dict[str, str]]:
    """One ``{"actual": name, "predicted": name}`` row per sample, for DVC's ``confusion`` plot.

    Raises:
        InputError: as :func:`classification_metrics`.
    """
    y_true, y_pred = _labels(y_true, y_pred, len(class_names))
    return [{"actual": class_names[t], "predicted": class_names[p]} for t, p in zip(y_true, y_pred)]


def plot_confusion(confusion: Sequence[Sequence[int]], class_names: Sequence[str], title: str, *, ax=None):
    """The project's confusion-matrix heat map: colour = fraction of the actual class, text = count.

    Rows are actual classes, columns predicted ones; the colour scale is fixed to [0, 1]
    (white to dark blue), so panels of different models compare directly. Counts are
    written in the cells for up to :data:`MAX_ANNOTATED_CLASSES` classes (more would not be
    legible); class names longer than two characters are written at 45 degrees.

    Args:
        confusion: counts, one row per actual and one column per predicted class.
        class_names: the classes, in the order of the rows.
        title: the axes' title.
        ax: a matplotlib axes to draw into (a panel of a larger figure; no colour bar
            is added, the caller adds one for all panels from ``ax.images[0]``). Without
            it, a standalone :class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot
            state) with a single axes is made; save it with ``fig.savefig(path)``.

    Returns:
        The figure drawn into (``ax.figure`` when ``ax`` is given).

    Raises:
        InputError: ``confusion`` is not n x n for n class names.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    n = len(class_names)
    if counts.shape != (n, n):
        raise InputError(f"confusion must be {n}x{n} for {n} classes; got shape {counts.shape}")
    row_sums = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, row_sums, out=np.zeros(counts.shape), where=row_sums > 0)

    if ax is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        size = max(4.0, 0.6 * n + 2)
        fig = Figure(figsize=(size + 1, size), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    if n <= MAX_ANNOTATED_CLASSES:
        for (row, col), count in np.ndenumerate(counts):
            colour = "white" if fractions[row, col] > 0.5 else "black"
            ax.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=7 if n > 10 else 8)
    long_names = max((len(str(name)) for name in class_names), default=0) > 2
    ax.set_xticks(range(n), labels=class_names, rotation=45 if long_names else 0,
                  ha="right" if long_names else "center", fontsize=8)
    ax.set_yticks(range(n), labels=class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    return ax.figure


def time_predict(predict_fn: Callable[[Any], Any], X, repeats: int = 1) -> tuple[np.ndarray, float]:
    """Run ``predict_fn(X)`` ``repeats`` times; return the predictions and images per second.

    Throughput uses the fastest run (``time.perf_counter``), which is the least disturbed
    by other load on the machine; a run too fast for the clock counts as 1 ns.

    Raises:
        ParameterError: ``repeats`` < 1.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ParameterError(f"repeats must be an int >= 1; got {repeats!r}")
    best = float("inf")
    for _ in range(repeats):
        start = perf_counter()
        predictions = predict_fn(X)
        best = min(best, perf_counter() - start)
    return np.asarray(predictions), len(X) / max(best, 1e-9)

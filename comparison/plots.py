"""The comparison plots: ranked leaderboard rows (and read data) in, matplotlib Figures out.

Accuracies carry their intervals as error bars where the rows have them
(``test_accuracy_ci_low``/``_high``, see :mod:`comparison.statistics`); the accuracy bars also show
each seed's test accuracy as a dot for models trained with several seeds (``evaluation.repeats``).

The confusion matrices are :mod:`comparison.confusion`'s. Every figure sits on its own Agg canvas
(no pyplot state, nothing written here); the
``compare`` stage turns them into PNG bytes with :func:`png_bytes`.
"""
from __future__ import annotations

import io
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from comparison.leaderboard import APPROACHES, p_text

COLOURS = {"classical": "#1f77b4", "deep": "#d62728"}
MARKERS = {"classical": "o", "deep": "s"}
CURVE_COLOURS = ("#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
MARKER_PT = 8.0  # marker size of the accuracy-vs-parameters scatter, in points
DPI = 120
# adjustText's iterations for the labels: a fixed number (not its default 1 s budget) gives the same
# picture on any machine. It stops early only when nothing overlaps, which crowded plots never reach;
# 300 places the default leaderboard's labels as 1,000 did (checked by eye) in a third of the time.
LABEL_ITERATIONS = 300


def figure(width: float, height: float):
    """An empty constrained-layout Figure (inches) on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _present(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [a for a in APPROACHES if any(r["approach"] == a for r in rows)]


def _legend(fig, approaches: Iterable[str], kind: str = "marker") -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    approaches = list(approaches)
    if kind == "patch":
        handles = [Patch(color=COLOURS[a], label=a) for a in approaches]
    else:
        handles = [Line2D([], [], ls="", marker=MARKERS[a], color=COLOURS[a], markersize=MARKER_PT, label=a)
                   for a in approaches]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(approaches), frameon=False)


def _intervals(rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each row's test accuracy in percent; NaN where a row has none."""
    def pct(value: Any) -> float:
        return np.nan if value is None else 100 * float(value)

    return (np.array([pct(r.get("test_accuracy_ci_low")) for r in rows], dtype=float),
            np.array([pct(r.get("test_accuracy_ci_high")) for r in rows], dtype=float))


def _seed_accuracies(rows: Sequence[Mapping[str, Any]]) -> list[np.ndarray]:
    """Each row's per-seed test accuracies in percent; empty for a model trained once."""
    def accuracies(row: Mapping[str, Any]) -> list:
        seeds = (row.get("per_seed") or {}).get("test_accuracy") or []
        return seeds if (row.get("repeats") or 1) > 1 and len(seeds) > 1 else []

    return [100 * np.asarray(accuracies(r), dtype=float) for r in rows]


def plot_accuracy_vs_params(rows: Sequence[Mapping[str, Any]], subtitle: str):
    """Test accuracy against parameter count (log scale), one labelled marker per model with
    the accuracy's interval as a vertical error bar.

    Labels are placed by adjustText (repulsion from each other and from the markers, with
    a leader line when a label moved away). The layout is frozen before that, so the pixel
    positions it optimises are the ones saved.
    """
    from adjustText import adjust_text

    fig = figure(10, 6.5)
    ax = fig.add_subplot()
    params = np.array([max(r["param_count"], 1) for r in rows], dtype=float)
    acc = np.array([100 * r["test_accuracy"] for r in rows])
    low, high = _intervals(rows)
    for approach in APPROACHES:
        mask = np.array([r["approach"] == approach for r in rows], dtype=bool)
        bars = mask & ~np.isnan(low) & ~np.isnan(high)
        if bars.any():
            ax.errorbar(params[bars], acc[bars], yerr=[acc[bars] - low[bars], high[bars] - acc[bars]], fmt="none",
                        ecolor=COLOURS[approach], elinewidth=1.0, capsize=3, alpha=0.55, zorder=2)
        if mask.any():
            ax.scatter(params[mask], acc[mask], s=MARKER_PT ** 2, marker=MARKERS[approach], c=COLOURS[approach],
                       edgecolors="white", linewidths=0.6, zorder=3)
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.15)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", axis="x", alpha=0.12)
    ax.set_xlabel("number of parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Test accuracy vs. model size (bars: confidence interval)\n{subtitle}")
    _legend(fig, _present(rows))

    fig.canvas.draw()
    fig.set_layout_engine("none")
    texts = [ax.text(x, y, r["model"], fontsize=8, color=COLOURS[r["approach"]], ha="center", va="center",
                     zorder=4) for x, y, r in zip(params, acc, rows)]
    adjust_text(texts, x=params, y=acc, objects=_marker_boxes(ax, params, acc), ax=ax, iter_lim=LABEL_ITERATIONS,
                expand=(1.15, 1.5), force_text=(0.3, 0.5), force_static=(0.3, 0.5), ensure_inside_axes=True,
                arrowprops=dict(arrowstyle="-", color="0.55", lw=0.6))
    return fig


def _marker_boxes(ax, xs: np.ndarray, ys: np.ndarray) -> list:
    """The markers' squares as Bboxes in data coordinates (what adjustText's ``objects`` takes)."""
    from matplotlib.transforms import Bbox

    radius = (MARKER_PT / 2 + 3) * ax.figure.dpi / 72  # 3 pt of clearance around the marker
    centres = ax.transData.transform(np.column_stack([xs, ys]))
    to_data = ax.transData.inverted()
    return [Bbox(to_data.transform([(x - radius, y - radius), (x + radius, y + radius)])) for x, y in centres]


def plot_accuracy_bars(rows: Sequence[Mapping[str, Any]], subtitle: str):
    """Horizontal bars of test accuracy, best on top, the axis starting below the worst, each
    with its interval as an error bar and its value to the right; for a model trained with
    several seeds, small dots at each seed's test accuracy (the bar is the first seed's)."""
    n = len(rows)
    fig = figure(9, max(3.2, 0.34 * n + 1.8))
    ax = fig.add_subplot()
    acc = np.array([100 * r["test_accuracy"] for r in rows])
    low, high = _intervals(rows)
    seeds = _seed_accuracies(rows)
    seed_lo = np.array([a.min() if a.size else np.nan for a in seeds])
    seed_hi = np.array([a.max() if a.size else np.nan for a in seeds])
    right = np.fmax(np.fmax(acc, high), seed_hi)  # NaN-ignoring: the interval's or the dots' end, or the bar's
    lo = max(0.0, math.floor((np.fmin(np.fmin(acc, low), seed_lo).min() - 5) / 5) * 5)
    hi = right.max() + 0.16 * (right.max() - lo)
    y = np.arange(n)[::-1]
    ax.barh(y, acc - lo, left=lo, color=[COLOURS[r["approach"]] for r in rows], height=0.7)
    bars = ~np.isnan(low) & ~np.isnan(high)
    if bars.any():
        ax.errorbar(acc[bars], y[bars], xerr=[acc[bars] - low[bars], high[bars] - acc[bars]], fmt="none",
                    ecolor="0.15", elinewidth=1.0, capsize=3, zorder=3)
    dots = any(a.size for a in seeds)
    if dots:
        ax.scatter(np.concatenate(seeds), np.repeat(y.astype(float), [a.size for a in seeds]), s=12, c="white",
                   edgecolors="0.1", linewidths=0.7, zorder=4)
    for yi, x, a in zip(y, right, acc):
        ax.text(x + 0.01 * (hi - lo), yi, f"{a:.2f} %", va="center", ha="left", fontsize=8)
    ax.set_yticks(y, labels=[r["model"] for r in rows], fontsize=9)
    ax.set_xlim(lo, hi)
    ax.set_xticks([t for t in ax.get_xticks() if lo <= t <= 100])
    ax.set_ylim(-0.6, n - 0.4)
    ax.grid(True, axis="x", alpha=0.35)
    ax.set_axisbelow(True)
    ax.set_xlabel("test accuracy (%)" + (f" (axis starts at {lo:g} %)" if lo > 0 else ""))
    dots_text = "; dots: each seed's accuracy" if dots else ""
    ax.set_title(f"Test accuracy by model (error bars: confidence interval{dots_text})\n{subtitle}")
    _legend(fig, _present(rows), "patch")
    return fig


# --- CNN training curves --------------------------------------------------------------------

def plot_training_curves(histories: Mapping[str, Mapping[str, np.ndarray]], subtitle: str):
    """Accuracy and loss per epoch of each CNN (``{arch: history}``), train solid, validation dashed."""
    fig = figure(12, 4.8)
    ax_acc, ax_loss = fig.subplots(1, 2)
    for i, (arch, h) in enumerate(histories.items()):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        for ax, key, scale in ((ax_acc, "accuracy", 100), (ax_loss, "loss", 1)):
            ax.plot(h["epoch"], scale * h[key], color=colour, lw=1.8, label=f"{arch} train")
            ax.plot(h["epoch"], scale * h[f"val_{key}"], color=colour, lw=1.8, ls="--", label=f"{arch} validation")
    for ax, what in ((ax_acc, "accuracy (%)"), (ax_loss, "loss (cross-entropy)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(True, alpha=0.35)
        if histories:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no CNN architectures configured", ha="center", va="center", transform=ax.transAxes)
    ax_acc.set_title("accuracy per epoch")
    ax_loss.set_title("loss per epoch")
    fig.suptitle(f"CNN training curves (solid: train, dashed: validation)\n{subtitle}")
    return fig


# --- McNemar p-values between the top models -------------------------------------------------

P_FLOOR = 1e-4  # the colour scale's lower end; smaller p-values get its colour


def plot_pairwise_pvalues(rows: Sequence[Mapping[str, Any]], pvalues: np.ndarray, subtitle: str,
                          alpha: float = 0.05):
    """Heat map of McNemar's exact p-value between each pair of ``rows`` (log colour scale),
    each cell annotated, bold where p < ``alpha``; model names coloured by approach."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    k = len(rows)
    side = max(4.5, 0.75 * k + 2.5)
    fig = figure(side + 1.2, side)
    ax = fig.add_subplot()
    data = np.ma.masked_invalid(np.asarray(pvalues, dtype=float).reshape(k, k))
    cmap = colormaps["viridis"].with_extremes(bad="0.93")
    image = ax.imshow(data, cmap=cmap, norm=LogNorm(vmin=P_FLOOR, vmax=1.0, clip=True))
    for i in range(k):
        for j in range(k):
            if data.mask[i, j]:
                continue
            p = float(data[i, j])
            dark = p < 10 ** (0.5 * math.log10(P_FLOOR))  # the darker half of viridis
            ax.text(j, i, p_text(p), ha="center", va="center", fontsize=8, color="white" if dark else "black",
                    fontweight="bold" if p < alpha else "normal")
    names = [r["model"] for r in rows]
    ax.set_xticks(range(k), labels=names, rotation=40, ha="right", fontsize=9)
    ax.set_yticks(range(k), labels=names, fontsize=9)
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        for label, row in zip(labels, rows):
            label.set_color(COLOURS[row["approach"]])
    if k < 2:
        ax.text(0.5, 0.5, "fewer than two models", ha="center", va="center", transform=ax.transAxes)
    fig.colorbar(image, ax=ax, shrink=0.8, label="McNemar p-value (exact, two-sided; log scale)")
    ax.set_title(f"Paired tests between the top {k} models by test accuracy (bold: p < {alpha:g})\n{subtitle}")
    return fig

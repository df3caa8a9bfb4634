"""DVC stage ``compare``: the leaderboard of every configured model, classical and deep.

Reads the per-model files of :mod:`pipeline.results` for exactly the models that
params.yaml configures (``Config.model_ids()``; files of removed models are ignored),
refuses models trained on different splits, and writes

* ``reports/leaderboard.csv`` / ``reports/leaderboard.md``  ranked by test accuracy
* ``reports/summary.json``     DVC metrics: best of each approach, difference, winner
* ``reports/plots/*.png``      accuracy vs parameters, accuracy bars, confusion matrices of
                                the best models, CNN training curves

Everything is built in memory first and written (atomically, file by file) only when
all of it succeeded. An MLflow run ``comparison`` gets the files as artifacts, the
summary as metrics, and becomes the parent of the model runs it read (their ids are in
the ``.run.json`` files, so a stage DVC skipped keeps its earlier run).

``cvd compare --from-mlflow`` rebuilds the leaderboard from the MLflow runs instead
(latest FINISHED run per configured model, on the current split) and writes
``reports/leaderboard_mlflow.csv`` / ``.md``, leaving DVC's outputs alone.
"""
from __future__ import annotations

import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pipeline.config import Config
from pipeline.errors import ConfigError, DataError
from pipeline.io import atomic_path, read_json
from pipeline.results import CONFUSION_DIR, run_info_path, scores_path

REPORTS_DIR = Path("reports")
PLOTS_DIR = REPORTS_DIR / "plots"
HISTORY_DIR = Path("plots/history")
MANIFEST = Path("data/prepared/manifest.json")
APPROACHES = ("classical", "deep")
COLOURS = {"classical": "#1f77b4", "deep": "#d62728"}
MARKERS = {"classical": "o", "deep": "s"}
DPI = 120
PLOT_NAMES = ("accuracy_vs_params", "accuracy_bars", "confusion_best", "training_curves")
REQUIRED = ("test_accuracy", "macro_f1", "param_count")
HISTORY_COLUMNS = ("epoch", "accuracy", "val_accuracy", "loss", "val_loss")
CSV_COLUMNS = [
    "rank", "approach", "model", "feature", "classifier", "arch", "test_accuracy", "macro_f1",
    "val_accuracy", "param_count", "model_bytes", "fit_seconds", "predict_images_per_s",
    "dataset", "split_sha256", "mlflow_run_id",
]


# --- reading -------------------------------------------------------------------------------

def stage_for(approach: str, model_id: str) -> str:
    """The DVC stage that writes a model's metrics (``train_classical@hog-rbf_svm``)."""
    return f"train_classical@{model_id}" if approach == "classical" else f"train_cnn@{model_id}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _make_row(approach: str, model_id: str, data: Mapping[str, Any], where: str, fix: str) -> dict:
    """One leaderboard row from a model's merged scores + run info (files or an MLflow run)."""
    bad = [key for key in REQUIRED if _number(data.get(key)) is None]
    if bad:
        raise DataError(f"{where}: missing or non-numeric {', '.join(bad)}; {fix}")
    split = data.get("split_sha256")
    if not isinstance(split, str) or not split:
        raise DataError(f"{where}: no split_sha256 recorded; {fix}")
    feature = classifier = arch = ""
    if approach == "classical":
        guess_feature, _, guess_classifier = model_id.partition("-")
        feature = str(data.get("feature") or guess_feature)
        classifier = str(data.get("classifier") or guess_classifier)
    else:
        arch = str(data.get("arch") or model_id)
    model_bytes = _number(data.get("model_bytes"))
    return {
        "approach": approach,
        "model": model_id,
        "feature": feature,
        "classifier": classifier,
        "arch": arch,
        "test_accuracy": float(data["test_accuracy"]),
        "macro_f1": float(data["macro_f1"]),
        "val_accuracy": _number(data.get("val_accuracy")),
        "param_count": int(data["param_count"]),
        "model_bytes": None if model_bytes is None else int(model_bytes),
        "fit_seconds": _number(data.get("fit_seconds")),
        "predict_images_per_s": _number(data.get("predict_images_per_s")),
        "dataset": str(data.get("dataset") or ""),
        "split_sha256": split,
        "mlflow_run_id": str(data.get("mlflow_run_id") or ""),
    }


def read_configured(cfg: Config) -> list[dict]:
    """Rows of every configured model, from ``metrics/``; a missing file names its stage."""
    rows, missing = [], []
    for approach, ids in cfg.model_ids().items():
        for model_id in ids:
            paths = (scores_path(approach, model_id), run_info_path(approach, model_id))
            absent = [str(p) for p in paths if not p.is_file()]
            if absent:
                missing.append(f"{' and '.join(absent)} (run `dvc repro {stage_for(approach, model_id)}`)")
                continue
            data = {**read_json(paths[0]), **read_json(paths[1])}
            rows.append(_make_row(approach, model_id, data, where=f"{paths[0]} / {paths[1].name}",
                                  fix=f"rerun `dvc repro {stage_for(approach, model_id)}`"))
    if missing:
        shown = "; ".join(missing[:4])
        more = f"; and {len(missing) - 4} more (or run `dvc repro` for all)" if len(missing) > 4 else ""
        raise DataError(f"missing metrics of {len(missing)} configured model(s): {shown}{more}")
    return rows


def _name_list(names: Sequence[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def check_same_split(rows: Sequence[Mapping[str, Any]]) -> str:
    """The one split every row was evaluated on; :class:`DataError` naming the odd ones out."""
    by_split: dict[str, list[str]] = {}
    for row in rows:
        by_split.setdefault(row["split_sha256"], []).append(row["model"])
    if len(by_split) > 1:
        groups = sorted(by_split.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        parts = "; ".join(f"{_name_list(models)} on split {sha[:12]}" for sha, models in groups)
        raise DataError(f"cannot compare models trained on different splits: {parts}; "
                        f"rerun `dvc repro` so every model uses the current split")
    return next(iter(by_split))


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# --- leaderboard ---------------------------------------------------------------------------

def rank_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Sorted by test accuracy (then macro-F1, fewer parameters, id); equal accuracy, equal rank."""
    ordered = sorted((dict(r) for r in rows),
                     key=lambda r: (-r["test_accuracy"], -r["macro_f1"], r["param_count"], r["model"]))
    for i, row in enumerate(ordered):
        same = i > 0 and row["test_accuracy"] == ordered[i - 1]["test_accuracy"]
        row["rank"] = ordered[i - 1]["rank"] if same else i + 1
    return ordered


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1000 * 1000:
        return f"{n / 1000:,.1f} KB"
    if n < 1000 ** 3:
        return f"{n / 1000 ** 2:,.1f} MB"
    return f"{n / 1000 ** 3:,.2f} GB"


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 100:
        return f"{s:,.0f}"
    return f"{s:.2f}" if s >= 0.01 or s == 0 else f"{s:.1g}"


def _fmt_rate(r: float | None) -> str:
    return "-" if r is None else f"{r:,.0f}"


# (header, right-aligned, cell) for the printed and markdown tables
DISPLAY = (
    ("#", True, lambda r: str(r["rank"])),
    ("approach", False, lambda r: r["approach"]),
    ("model", False, lambda r: r["model"]),
    ("feature / arch", False, lambda r: r["feature"] or r["arch"]),
    ("classifier", False, lambda r: r["classifier"] or "-"),
    ("test acc %", True, lambda r: f"{100 * r['test_accuracy']:.2f}"),
    ("macro-F1", True, lambda r: f"{r['macro_f1']:.4f}"),
    ("params", True, lambda r: f"{r['param_count']:,}"),
    ("fit s", True, lambda r: _fmt_seconds(r["fit_seconds"])),
    ("predict img/s", True, lambda r: _fmt_rate(r["predict_images_per_s"])),
    ("size", True, lambda r: _fmt_bytes(r["model_bytes"])),
)


def text_table(rows: Sequence[Mapping[str, Any]]) -> str:
    cells = [[cell(r) for _, _, cell in DISPLAY] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _, _) in enumerate(DISPLAY)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if right else v.ljust(w)
                         for v, w, (_, right, _) in zip(values, widths, DISPLAY)).rstrip()

    return "\n".join([line([h for h, _, _ in DISPLAY]), line(["-" * w for w in widths])]
                     + [line(c) for c in cells])


def markdown_table(rows: Sequence[Mapping[str, Any]], title: str, verdict_line: str) -> str:
    head = "| " + " | ".join(h for h, _, _ in DISPLAY) + " |"
    rule = "|" + "|".join("---:" if right else ":---" for _, right, _ in DISPLAY) + "|"
    body = []
    for r in rows:
        cells = [cell(r) for _, _, cell in DISPLAY]
        cells[2] = f"`{cells[2]}`"
        body.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join([f"# {title}", "", head, rule, *body, "", verdict_line, ""])


def _csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    import csv

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in CSV_COLUMNS})
    return buf.getvalue().encode("utf-8")


# --- summary -------------------------------------------------------------------------------

def build_summary(rows: Sequence[Mapping[str, Any]]) -> dict:
    """Best model of each approach (rows must be ranked), the difference and the winner."""
    best: dict[str, dict | None] = {}
    for approach in APPROACHES:
        top = next((r for r in rows if r["approach"] == approach), None)
        best[approach] = None if top is None else {
            "model": top["model"], "test_accuracy": top["test_accuracy"],
            "param_count": top["param_count"], "fit_seconds": top["fit_seconds"],
        }
    difference = winner = None
    if best["classical"] and best["deep"]:
        difference = round(best["deep"]["test_accuracy"] - best["classical"]["test_accuracy"], 6)
        winner = "tie" if difference == 0 else ("deep" if difference > 0 else "classical")
    return {
        "best_classical": best["classical"],
        "best_deep": best["deep"],
        "accuracy_difference": difference,
        "winner": winner,
        "n_models": len(rows),
        "dataset": rows[0]["dataset"] if rows else "",
        "split_sha256": rows[0]["split_sha256"] if rows else "",
    }


def _fmt_fit(s: float | None) -> str:
    if s is None:
        return "?"
    if s >= 100:
        return f"{s:,.0f}"
    return f"{s:.1f}" if s >= 0.1 else f"{s:.2g}"


def verdict(summary: Mapping[str, Any]) -> str:
    """One line: who wins, by how much, at what cost in parameters and fit time."""
    c, d = summary["best_classical"], summary["best_deep"]
    if not (c and d):
        only = c or d
        approach = "classical" if c else "deep"
        return f"only {approach} models to compare: best {only['model']} {100 * only['test_accuracy']:.2f} %"
    points = abs(summary["accuracy_difference"]) * 100
    digits = 1  # enough decimals that a non-zero difference does not print as 0.0
    while points and round(points, digits) == 0 and digits < 4:
        digits += 1
    if summary["winner"] == "tie":
        first, second = d, c
        head = f"tie at {100 * d['test_accuracy']:.{digits}f} %: {d['model']} vs {c['model']}"
    else:
        first, second = (d, c) if summary["winner"] == "deep" else (c, d)
        head = (f"{summary['winner']} wins by {points:.{digits}f} points: "
                f"{first['model']} {100 * first['test_accuracy']:.{digits}f} % vs "
                f"{second['model']} {100 * second['test_accuracy']:.{digits}f} %")
    return (f"{head}, with {first['param_count']:,} vs {second['param_count']:,} parameters and "
            f"{_fmt_fit(first['fit_seconds'])} s vs {_fmt_fit(second['fit_seconds'])} s fit")


# --- plots (matplotlib Figure on an Agg canvas: no pyplot state) ----------------------------

def _figure(width: float, height: float, layout: str | None = "constrained"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _legend_handles(approaches: Iterable[str], kind: str = "marker") -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if kind == "patch":
        return [Patch(color=COLOURS[a], label=a) for a in approaches]
    return [Line2D([], [], ls="", marker=MARKERS[a], color=COLOURS[a], markersize=8, label=a) for a in approaches]


def _place_labels(fig, ax, xs: np.ndarray, ys: np.ndarray, labels: Sequence[str], colours: Sequence[str],
                  marker_pt: float) -> None:
    """Label each point where the text overlaps no other label, marker or the axes edge.

    Greedy: tries 8 directions at growing distances (with a leader line beyond the first
    ring) and keeps the first free spot, else the least-overlapping one. The layout is
    frozen first so the pixel positions used here are the ones saved.
    """
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    fig.canvas.draw()
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    centres = ax.transData.transform(np.column_stack([xs, ys]))
    radius = marker_pt / 2 * fig.dpi / 72 + 1
    obstacles = [Bbox.from_extents(x - radius, y - radius, x + radius, y + radius) for x, y in centres]
    ring = [(6, 4, "left", "bottom"), (6, -4, "left", "top"), (-6, 4, "right", "bottom"),
            (-6, -4, "right", "top"), (8, 0, "left", "center"), (-8, 0, "right", "center"),
            (0, 7, "center", "bottom"), (0, -7, "center", "top")]
    candidates = [(dx * k, dy * k, ha, va, k > 1) for k in (1, 2.5, 4, 5.5) for dx, dy, ha, va in ring]

    def cost(box) -> float:
        total = 0.0
        for other in obstacles:
            if box.overlaps(other):
                inter = Bbox.intersection(box, other)
                total += inter.width * inter.height if inter is not None else 0.0
        inside = Bbox.intersection(box, frame)
        outside = box.width * box.height - (inside.width * inside.height if inside is not None else 0.0)
        return total + 10 * outside

    order = np.lexsort((xs, -ys))  # top to bottom, then left to right
    for i in order:
        best = None
        for dx, dy, ha, va, leader in candidates:
            probe = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                                ha=ha, va=va, fontsize=8)
            probe.update_positions(renderer)
            box = Text.get_window_extent(probe, renderer).padded(1)
            probe.remove()
            score = cost(box)
            if best is None or score < best[0]:
                best = (score, dx, dy, ha, va, leader, box)
            if score == 0:
                break
        _, dx, dy, ha, va, leader, box = best
        arrow = dict(arrowstyle="-", color="0.55", lw=0.6, shrinkA=0, shrinkB=radius * 72 / fig.dpi) if leader else None
        ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                    fontsize=8, color=colours[i], arrowprops=arrow)
        obstacles.append(box)


def plot_accuracy_vs_params(rows: Sequence[Mapping[str, Any]], subtitle: str):
    fig = _figure(10, 6.5)
    ax = fig.add_subplot()
    params = np.array([max(r["param_count"], 1) for r in rows], dtype=float)
    acc = np.array([100 * r["test_accuracy"] for r in rows])
    marker_pt = 8.0
    for approach in APPROACHES:
        mask = np.array([r["approach"] == approach for r in rows])
        if mask.any():
            ax.scatter(params[mask], acc[mask], s=marker_pt ** 2, marker=MARKERS[approach], c=COLOURS[approach],
                       edgecolors="white", linewidths=0.6, zorder=3)
    ax.set_xscale("log")
    ax.margins(x=0.12, y=0.12)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", axis="x", alpha=0.12)
    ax.set_xlabel("number of parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Test accuracy vs. model size\n{subtitle}")
    present = [a for a in APPROACHES if any(r["approach"] == a for r in rows)]
    fig.legend(handles=_legend_handles(present), loc="outside lower center", ncols=len(present), frameon=False)
    _place_labels(fig, ax, params, acc, [r["model"] for r in rows], [COLOURS[r["approach"]] for r in rows],
                  marker_pt)
    return fig


def plot_accuracy_bars(rows: Sequence[Mapping[str, Any]], subtitle: str):
    n = len(rows)
    fig = _figure(9, max(3.2, 0.34 * n + 1.8))
    ax = fig.add_subplot()
    acc = np.array([100 * r["test_accuracy"] for r in rows])
    lo = max(0.0, math.floor((acc.min() - 5) / 5) * 5)
    hi = acc.max() + 0.14 * (acc.max() - lo)
    y = np.arange(n)[::-1]  # best on top
    ax.barh(y, acc - lo, left=lo, color=[COLOURS[r["approach"]] for r in rows], height=0.7)
    for yi, a in zip(y, acc):
        ax.text(a + 0.01 * (hi - lo), yi, f"{a:.2f} %", va="center", ha="left", fontsize=8)
    ax.set_yticks(y, labels=[r["model"] for r in rows], fontsize=9)
    ax.set_xlim(lo, hi)
    ax.set_xticks([t for t in ax.get_xticks() if lo <= t <= 100])
    ax.set_ylim(-0.6, n - 0.4)
    ax.grid(True, axis="x", alpha=0.35)
    ax.set_axisbelow(True)
    ax.set_xlabel("test accuracy (%)" + (f" (axis starts at {lo:g} %)" if lo > 0 else ""))
    ax.set_title(f"Test accuracy by model\n{subtitle}")
    present = [a for a in APPROACHES if any(r["approach"] == a for r in rows)]
    fig.legend(handles=_legend_handles(present, "patch"), loc="outside lower center", ncols=len(present),
               frameon=False)
    return fig


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def read_confusion(approach: str, model_id: str) -> tuple[list[str], list[str]]:
    """(actual, predicted) class names of every test image, from ``plots/confusion/<id>.csv``."""
    import csv

    path = CONFUSION_DIR / f"{model_id}.csv"
    if not path.is_file():
        raise DataError(f"{path}: not found (run `dvc repro {stage_for(approach, model_id)}`)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not {"actual", "predicted"} <= set(reader.fieldnames or ()):
            raise DataError(f"{path}: expected columns actual,predicted; got {','.join(reader.fieldnames or [])}")
        pairs = [(row["actual"], row["predicted"]) for row in reader]
    if not pairs:
        raise DataError(f"{path}: no rows (rerun `dvc repro {stage_for(approach, model_id)}`)")
    return [a for a, _ in pairs], [p for _, p in pairs]


def _class_order(seen: set[str]) -> list[str]:
    try:
        names = [str(n) for n in json.loads(MANIFEST.read_text(encoding="utf-8"))["class_names"]]
    except (OSError, ValueError, KeyError, TypeError):
        names = []
    if names and seen <= set(names):
        return names
    return sorted(seen, key=_natural_key)


def confusion_models(rows: Sequence[Mapping[str, Any]], count: int = 4) -> list[Mapping[str, Any]]:
    """Best classical and best deep model, then the next best overall, up to ``count``, by rank."""
    chosen = [next(r for r in rows if r["approach"] == a) for a in APPROACHES if any(r["approach"] == a for r in rows)]
    for row in rows:
        if len(chosen) >= count:
            break
        if row not in chosen:
            chosen.append(row)
    return sorted(chosen, key=lambda r: rows.index(r))


def plot_confusion_best(rows: Sequence[Mapping[str, Any]], subtitle: str):
    chosen = confusion_models(rows)
    data = {r["model"]: read_confusion(r["approach"], r["model"]) for r in chosen}
    classes = _class_order({c for actual, pred in data.values() for c in (*actual, *pred)})
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    ncols = 1 if len(chosen) == 1 else 2
    nrows = math.ceil(len(chosen) / ncols)
    panel = max(3.6, 0.36 * k + 1.4)
    fig = _figure(panel * ncols + 1.0, panel * nrows + 0.9)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for ax, row in zip(axes.flat, chosen):
        actual, predicted = data[row["model"]]
        counts = np.zeros((k, k), dtype=np.int64)
        np.add.at(counts, ([index[a] for a in actual], [index[p] for p in predicted]), 1)
        sums = counts.sum(axis=1, keepdims=True)
        fractions = np.divide(counts, sums, out=np.zeros(counts.shape), where=sums > 0)
        image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
        if k <= 15:
            for (i, j), c in np.ndenumerate(counts):
                if c:
                    ax.text(j, i, str(c), ha="center", va="center", fontsize=7 if k > 10 else 8,
                            color="white" if fractions[i, j] > 0.5 else "black")
        long_names = max(len(c) for c in classes) > 2
        ax.set_xticks(range(k), labels=classes, rotation=45 if long_names else 0,
                      ha="right" if long_names else "center", fontsize=8)
        ax.set_yticks(range(k), labels=classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(f"#{row['rank']} {row['model']} ({row['approach']})\n"
                     f"test accuracy {100 * row['test_accuracy']:.2f} %", fontsize=10,
                     color=COLOURS[row["approach"]])
    for ax in list(axes.flat)[len(chosen):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes, shrink=0.6, label="fraction of the actual class")
    fig.suptitle(f"Confusion matrices of the best models (test split)\n{subtitle}")
    return fig


def read_history(arch: str) -> dict[str, np.ndarray]:
    import csv

    path = HISTORY_DIR / f"{arch}.csv"
    if not path.is_file():
        raise DataError(f"{path}: not found (run `dvc repro {stage_for('deep', arch)}`)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in HISTORY_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; "
                            f"rerun `dvc repro {stage_for('deep', arch)}`")
        records = list(reader)
    if not records:
        raise DataError(f"{path}: no epochs recorded; rerun `dvc repro {stage_for('deep', arch)}`")
    try:
        return {c: np.array([float(r[c]) if r[c] not in ("", None) else np.nan for r in records])
                for c in HISTORY_COLUMNS}
    except ValueError as exc:
        raise DataError(f"{path}: not numeric ({exc})") from None


def plot_training_curves(archs: Sequence[str], subtitle: str):
    histories = {arch: read_history(arch) for arch in archs}
    fig = _figure(12, 4.8)
    ax_acc, ax_loss = fig.subplots(1, 2)
    palette = ["#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    for i, (arch, h) in enumerate(histories.items()):
        colour = palette[i % len(palette)]
        ax_acc.plot(h["epoch"], 100 * h["accuracy"], color=colour, lw=1.8, label=f"{arch} train")
        ax_acc.plot(h["epoch"], 100 * h["val_accuracy"], color=colour, lw=1.8, ls="--", label=f"{arch} validation")
        ax_loss.plot(h["epoch"], h["loss"], color=colour, lw=1.8, label=f"{arch} train")
        ax_loss.plot(h["epoch"], h["val_loss"], color=colour, lw=1.8, ls="--", label=f"{arch} validation")
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


# --- MLflow --------------------------------------------------------------------------------

def _log_comparison(cfg: Config, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
                    files: Sequence[Path]) -> tuple[str, int, list[str]]:
    """The ``comparison`` run, parent of the model runs it read; returns (run id, runs linked, warnings)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import log_metrics, stage_run, tracking_uri

    model_runs = [(r["model"], r["mlflow_run_id"]) for r in rows]
    linked = [rid for _, rid in model_runs if rid]
    without_id = [model for model, rid in model_runs if not rid]
    warnings = []
    if without_id:
        warnings.append(f"no mlflow_run_id in the .run.json of {_name_list(without_id)}; "
                        f"not linked to the comparison run")
    tags = {"approach": "comparison", "model_runs": ",".join(linked), "winner": str(summary["winner"])}
    params = {"features.names": list(cfg.features.names), "classical.classifiers": list(cfg.classical.classifiers),
              "cnn.architectures": list(cfg.cnn.architectures)}
    with stage_run("compare", experiment=cfg.experiment, run_name="comparison", dataset=summary["dataset"],
                   split_sha256=summary["split_sha256"], tags=tags, params=params) as run:
        best_c, best_d = summary["best_classical"] or {}, summary["best_deep"] or {}
        log_metrics({"best_classical_accuracy": best_c.get("test_accuracy"),
                     "best_deep_accuracy": best_d.get("test_accuracy"),
                     "accuracy_difference": summary["accuracy_difference"],
                     "n_models": summary["n_models"]})
        for path in files:
            mlflow.log_artifact(str(path), artifact_path="plots" if path.parent == PLOTS_DIR else None)
        parent = run.info.run_id
        client = MlflowClient(tracking_uri=tracking_uri())
        n_linked, failed, reason = 0, [], ""
        for model, rid in model_runs:
            if not rid:
                continue
            try:
                client.set_tag(rid, "mlflow.parentRunId", parent)
                n_linked += 1
            except MlflowException as exc:  # deleted run or store: the comparison still stands
                failed.append(f"{model} ({rid})")
                reason = reason or (str(exc).splitlines() or [type(exc).__name__])[0][:160]
    if failed:
        warnings.append(f"MLflow run(s) of {_name_list(failed, 4)} not found or not writable, not linked "
                        f"to the comparison run (first error: {reason})")
    return parent, n_linked, warnings


# --- MLflow as the source (--from-mlflow) ---------------------------------------------------

def _current_split() -> str | None:
    try:
        return str(json.loads(MANIFEST.read_text(encoding="utf-8"))["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def rows_from_mlflow(cfg: Config, experiment: str) -> tuple[list[dict], str]:
    """Latest FINISHED run of each configured model in ``experiment``, on one split."""
    import mlflow

    from pipeline.tracking import tracking_uri

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        existing = sorted(e.name for e in mlflow.search_experiments())
        raise DataError(f"MLflow experiment {experiment!r} not found at {uri}; existing: "
                        f"{', '.join(existing) or 'none'}")
    split = _current_split()
    runs = []
    for approach in APPROACHES:
        query = f"tags.approach = '{approach}' AND attributes.status = 'FINISHED'"
        if split:
            query += f" AND tags.split_sha256 = '{split}'"
        runs += mlflow.search_runs(experiment_names=[experiment], filter_string=query,
                                   order_by=["attributes.start_time DESC"], output_format="list")
    if not runs:
        where = f" on split {split[:12]} (data/prepared/manifest.json)" if split else ""
        raise DataError(f"MLflow experiment {experiment!r} has no FINISHED classical or deep runs{where}")
    runs.sort(key=lambda r: r.info.start_time or 0, reverse=True)
    if split is None:  # no prepared split here: use the split of the most recent model run
        split = runs[0].data.tags.get("split_sha256", "")
        runs = [r for r in runs if r.data.tags.get("split_sha256", "") == split]
    latest: dict[tuple[str, str], Any] = {}
    for r in runs:
        latest.setdefault((r.data.tags.get("approach", ""), r.data.tags.get("model", "")), r)
    rows, missing = [], []
    for approach, ids in cfg.model_ids().items():
        for model_id in ids:
            r = latest.get((approach, model_id))
            if r is None:
                missing.append(model_id)
                continue
            data = {**r.data.metrics, **r.data.tags, "mlflow_run_id": r.info.run_id}
            rows.append(_make_row(approach, model_id, data, where=f"MLflow run {r.info.run_id} ({model_id})",
                                  fix=f"rerun `dvc repro {stage_for(approach, model_id)}`"))
    if not rows:
        raise DataError(f"MLflow experiment {experiment!r}: none of the configured models has a FINISHED run "
                        f"on split {split[:12]}")
    if missing:
        _warn(f"no FINISHED MLflow run on split {split[:12]} for: {_name_list(missing, 10)}; left out")
    return rows, split


# --- the stage -----------------------------------------------------------------------------

def _write(outputs: Mapping[Path, bytes]) -> None:
    for dest, content in outputs.items():
        with atomic_path(dest) as tmp:
            tmp.write_bytes(content)


def _subtitle(summary: Mapping[str, Any]) -> str:
    return (f"{summary['dataset'] or 'dataset ?'}, {summary['n_models']} models, "
            f"split {summary['split_sha256'][:12]}")


def _dataframe(rows: Sequence[Mapping[str, Any]]):
    import pandas as pd

    return pd.DataFrame([{k: r.get(k) for k in CSV_COLUMNS} for r in rows], columns=CSV_COLUMNS)


def run(cfg: Config, from_mlflow: bool = False, experiment: str | None = None):
    """Build, write and print the leaderboard; returns it as a pandas DataFrame."""
    if from_mlflow:
        return _run_from_mlflow(cfg, experiment or cfg.experiment)
    if experiment:
        raise ConfigError(f"--experiment = {experiment!r}: only applies with --from-mlflow "
                          f"(the comparison run goes to mlflow.experiment = {cfg.experiment!r})")

    rows = read_configured(cfg)
    split = check_same_split(rows)
    current = _current_split()
    if current and current != split:
        _warn(f"the models were trained on split {split[:12]} but {MANIFEST} is split {current[:12]}; "
              f"run `dvc repro` to retrain them on the current split")
    rows = rank_rows(rows)
    summary = build_summary(rows)
    line = verdict(summary)
    subtitle = _subtitle(summary)

    # build everything in memory first: a failure here writes nothing
    figures = {
        "accuracy_vs_params": plot_accuracy_vs_params(rows, subtitle),
        "accuracy_bars": plot_accuracy_bars(rows, subtitle),
        "confusion_best": plot_confusion_best(rows, subtitle),
        "training_curves": plot_training_curves(cfg.model_ids()["deep"], subtitle),
    }
    outputs: dict[Path, bytes] = {
        REPORTS_DIR / "leaderboard.csv": _csv_bytes(rows),
        REPORTS_DIR / "leaderboard.md": markdown_table(rows, f"Leaderboard: {subtitle}", line).encode("utf-8"),
        **{PLOTS_DIR / f"{name}.png": _png(fig) for name, fig in figures.items()},
        REPORTS_DIR / "summary.json": (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"),
    }
    _write(outputs)

    print(text_table(rows))
    print()
    run_id, n_linked, warnings = _log_comparison(cfg, rows, summary, list(outputs))
    for message in warnings:
        _warn(message)
    print(f"wrote {REPORTS_DIR}/leaderboard.csv, leaderboard.md, summary.json and {len(figures)} plots in "
          f"{PLOTS_DIR}/; MLflow run {run_id} (experiment {cfg.experiment!r}) is the parent of "
          f"{n_linked} of {len(rows)} model runs")
    print(line)
    return _dataframe(rows)


def _run_from_mlflow(cfg: Config, experiment: str):
    rows, split = rows_from_mlflow(cfg, experiment)
    rows = rank_rows(rows)
    summary = build_summary(rows)
    line = verdict(summary)
    title = f"Leaderboard from MLflow experiment {experiment!r}: {_subtitle(summary)}"
    _write({
        REPORTS_DIR / "leaderboard_mlflow.csv": _csv_bytes(rows),
        REPORTS_DIR / "leaderboard_mlflow.md": markdown_table(rows, title, line).encode("utf-8"),
    })
    print(f"from MLflow experiment {experiment!r}: latest FINISHED run of {len(rows)} models on split {split[:12]}")
    print(text_table(rows))
    print()
    print(f"wrote {REPORTS_DIR}/leaderboard_mlflow.csv and leaderboard_mlflow.md")
    print(line)
    return _dataframe(rows)

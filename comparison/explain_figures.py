"""``explain``'s files rendered in memory: the per-class bars, the disagreement and mistake
galleries, the confusion difference and their CSVs (:func:`analyse`)."""
from __future__ import annotations

import csv
import io
from typing import Any, Mapping, Sequence

import numpy as np

from comparison.explain import class_names_for, confidence, confident_mistakes, confusion, disagreements, per_class
from comparison.predictions import Predictions

GALLERY_LIMIT = 40  # tiles per disagreement gallery (the CSV lists every image)
MISTAKES = 16  # most confident mistakes shown per model
TILE_SCALE = 4  # gallery display pixels per image pixel


def _score(p: Predictions, row: int) -> str:
    value = float(p.scores[row, p.y_pred[row]])
    return f"{value:.2f}" if p.score_kind == "probability" else f"score {value:.2g}"


def gallery_figure(images: np.ndarray, tiles: Sequence[tuple[int, str, str]], title: str, columns: int = 8):
    """Tiles of ``(image position, label, colour)``: each image enlarged without smoothing."""
    from features.drawing import as_rgb, upscale
    from matplotlib.figure import Figure

    columns = min(columns, max(len(tiles), 4))  # a few tiles keep their size, not the full width
    rows = max(1, int(np.ceil(len(tiles) / columns)))
    fig = Figure(figsize=(1.45 * columns, 1.95 * rows + 0.7), dpi=100)
    axes = np.atleast_2d(fig.subplots(rows, columns, squeeze=False))
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, (position, label, colour) in zip(axes.ravel(), tiles):
        ax.imshow(upscale(as_rgb(images[position]), TILE_SCALE), interpolation="nearest")
        ax.set_title(label, fontsize=6.5, color=colour, loc="left")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(top=1 - 0.65 / (1.95 * rows + 0.7), hspace=0.7, wspace=0.15, left=0.01, right=0.99, bottom=0.01)
    return fig


def per_class_figure(rows: Sequence[Mapping[str, Any]], classical: str, deep: str):
    from matplotlib.figure import Figure

    names = [r["class"] for r in rows]
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6.0, 0.6 * len(rows) + 2), 5.2), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    top.bar(x - 0.2, [100 * r["classical_accuracy"] for r in rows], 0.4, label=f"classical: {classical}", color="#4c72b0")
    top.bar(x + 0.2, [100 * r["deep_accuracy"] for r in rows], 0.4, label=f"deep: {deep}", color="#dd8452")
    low = min([100 * min(r["classical_accuracy"], r["deep_accuracy"]) for r in rows if r["n_test"]] or [0])
    top.set_ylim(max(0, low - 5), 100.5)
    top.set_ylabel("test accuracy %")
    top.legend(fontsize=8, loc="lower left")
    diff = [100 * r["difference"] for r in rows]
    bottom.bar(x, diff, 0.6, color=["#dd8452" if v > 0 else "#4c72b0" for v in diff])
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_ylabel("deep - classical\n(points)")
    bottom.set_xticks(x, names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right", fontsize=8)
    fig.suptitle("Per-class test accuracy of the best model of each approach", fontsize=10)
    return fig


def confusion_difference_figure(diff: np.ndarray, names: Sequence[str], classical: str, deep: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.0, 0.5 * len(names) + 2.5), max(4.5, 0.5 * len(names) + 2)), dpi=100,
                 layout="constrained")
    ax = fig.subplots()
    limit = max(1, int(np.abs(diff).max()))
    shown = ax.imshow(diff, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (i, j), v in np.ndenumerate(diff):
        if v:
            ax.text(j, i, f"{v:+d}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(shown, ax=ax, shrink=0.8, label=f"images: {deep} minus {classical}")
    ax.set_title(f"Confusion difference, deep ({deep}) - classical ({classical}):\non the diagonal > 0 deep gets more "
                 f"right, off it > 0 deep makes that mistake more", fontsize=9)
    return fig


def png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, metadata={"Software": None})
    return buf.getvalue()


def csv_bytes(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def analyse(classical: Predictions, deep: Predictions, images: np.ndarray, class_names: Sequence[str],
            names: tuple[str, str]) -> tuple[dict[str, bytes], dict]:
    """Every file of reports/explain/ but the drawings, rendered in memory, and the counts."""
    cname, dname = names
    k = max(len(class_names), classical.scores.shape[1], deep.scores.shape[1])
    labels = class_names_for(class_names, k)
    only_c, only_d = disagreements(classical, deep)
    row_of = {int(i): r for r, i in enumerate(classical.index)}

    def tile(position: int) -> tuple[int, str, str]:
        r = row_of[position]
        text = (f"#{position} true {labels[classical.y_true[r]]}\nC: {labels[classical.y_pred[r]]} "
                f"({_score(classical, r)})\nD: {labels[deep.y_pred[r]]} ({_score(deep, r)})")
        return position, text, "black"

    files: dict[str, bytes] = {}
    classes = per_class(classical, deep, labels)
    files["per_class.csv"] = csv_bytes(classes, ["class", "n_test", "classical_accuracy", "deep_accuracy", "difference"])
    files["per_class.png"] = png(per_class_figure(classes, cname, dname))
    disagreeing = [{"index": int(i), "true": labels[classical.y_true[row_of[int(i)]]], "right": who,
                    "classical_pred": labels[classical.y_pred[row_of[int(i)]]],
                    "classical_score": float(confidence(classical)[row_of[int(i)]]),
                    "deep_pred": labels[deep.y_pred[row_of[int(i)]]],
                    "deep_score": float(confidence(deep)[row_of[int(i)]])}
                   for who, group in (("classical", only_c), ("deep", only_d)) for i in group]
    files["disagreements.csv"] = csv_bytes(disagreeing, ["index", "true", "right", "classical_pred", "classical_score",
                                                         "deep_pred", "deep_score"])
    for stem, group, who in (("only_classical_right", only_c, f"classical {cname} right, deep {dname} wrong"),
                             ("only_deep_right", only_d, f"deep {dname} right, classical {cname} wrong")):
        if len(group):
            shown = f"{min(len(group), GALLERY_LIMIT)} of {len(group)}" if len(group) > GALLERY_LIMIT else len(group)
            files[f"{stem}.png"] = png(gallery_figure(images, [tile(int(i)) for i in group[:GALLERY_LIMIT]],
                                                      f"{who}:\n{shown} test images (C = classical, D = deep)"))
    for stem, p, model in (("mistakes_classical", classical, cname), ("mistakes_deep", deep, dname)):
        rows = confident_mistakes(p, MISTAKES)
        if len(rows):
            files[f"{stem}.png"] = png(gallery_figure(
                images, [tile(int(p.index[r])) for r in rows],
                f"{model}: its {len(rows)} most confident mistakes\nof {int((~p.correct).sum())} (C = classical, D = deep)"))
    diff = confusion(deep, k) - confusion(classical, k)
    files["confusion_difference.csv"] = csv_bytes(
        [{"actual": labels[i], "predicted": labels[j], "deep_minus_classical": int(v)}
         for (i, j), v in np.ndenumerate(diff) if v], ["actual", "predicted", "deep_minus_classical"])
    files["confusion_difference.png"] = png(confusion_difference_figure(diff, labels, cname, dname))
    counts = {"classical": cname, "deep": dname, "n_test": int(len(classical)),
              "only_classical_right": int(len(only_c)), "only_deep_right": int(len(only_d)),
              "both_wrong": int((~classical.correct & ~deep.correct).sum()),
              "classical_mistakes": int((~classical.correct).sum()), "deep_mistakes": int((~deep.correct).sum()),
              "per_class_difference": {r["class"]: r["difference"] for r in classes}, "per_class_rows": classes}
    return files, counts

"""The learning curve on the report: ``explain`` reads the points the ``learning_curve@<fraction>``
stages wrote (``curves/<fraction>.json``, the fractions params.yaml ``curve.fractions`` lists),
states the crossover (:func:`comparison.curves.crossover` at ``evaluation.alpha``) and renders

* ``reports/curve/summary.json``        the crossover (status, winner, size, bracket, text) and every point
* ``reports/curve/learning_curve.csv``  one row per model and size
* ``reports/curve/learning_curve.png``  accuracy against training images, with interval bands

and the page's "Learning curve" section. Nothing is written here: :func:`curve_report` returns
the files' bytes for ``explain`` to write with its own.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from comparison import curves
from pipeline import layout
from pipeline.config import Config
from pipeline.errors import DataError
from pipeline.io import read_json
from pipeline.report_html import Picture, Section, Table

FILES = ("summary.json", "learning_curve.csv", "learning_curve.png")


def read_points(cfg: Config, split_sha256: str) -> list[dict]:
    """The configured fractions' points, by training size; [] when none was computed (an error
    when only some were, or when they are for another split or other models)."""
    wanted = set(cfg.curve.fractions)
    found = {}
    for path in sorted(layout.CURVES_DIR.glob("*.json")):
        point = read_json(path)
        if point.get("fraction") in wanted:
            found[point["fraction"]] = (path, point)
    if not found:
        return []
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{layout.CURVES_DIR}/: no point for curve.fractions {missing}; run `dvc repro learning_curve`")
    for path, point in found.values():
        if point.get("split_sha256") != split_sha256:
            raise DataError(f"{path}: a point of split {str(point.get('split_sha256'))[:12]}, not "
                            f"{split_sha256[:12]}; run `dvc repro learning_curve`")
    models = {tuple(p["model"] for p in point["points"]) for _, point in found.values()}
    if len(models) > 1:
        raise DataError(f"{layout.CURVES_DIR}/: the points are of different models {sorted(models)}; "
                        f"run `dvc repro learning_curve`")
    return sorted((point for _, point in found.values()), key=lambda p: p["n_train"])


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=curves.CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if row.get(k) is None else row[k]) for k in curves.CSV_COLUMNS} for row in rows)
    return buf.getvalue().encode("utf-8")


def curve_report(cfg: Config, split_sha256: str, subtitle: str, level: str) -> tuple[dict[Path, bytes], Any, str]:
    """``(files, section, crossover text)`` of the learning curve; ``({}, None, "")`` without points."""
    from comparison.curve_figure import plot_learning_curve
    from comparison.plots import png_bytes

    points = read_points(cfg, split_sha256)
    if not points:
        return {}, None, ""
    sizes = [point["points"] for point in points]
    result = curves.crossover(sizes, cfg.evaluation.alpha)
    rows = curves.curve_rows(sizes)
    summary = {"crossover": result, "points": rows, "n_test": points[0]["n_test"],
               "n_train_full": points[0]["n_train_full"], "seed": points[0]["seed"]}
    folder = layout.CURVE_REPORT_DIR
    files = {folder / "summary.json": (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"),
             folder / "learning_curve.csv": _csv(rows),
             folder / "learning_curve.png": png_bytes(plot_learning_curve(rows, result, subtitle, level))}
    return files, section(rows, result, points[0]["n_test"], level), result["text"]


def section(rows: list[dict], result: dict, n_test: int, level: str) -> Section:
    """The page's "Learning curve" section: the crossover sentence, the points' table, the figure."""
    def pct(value: float) -> str:
        return f"{100 * value:.2f}"

    table = Table(["training images", "fraction", "model", "test acc %", f"{level} Wilson CI", "fit s", "epochs",
                   "McNemar p vs other approach"],
                  [[f"{r['n_train']:,}", curves.fraction_text(r["fraction"]),
                    r["model"] + (" (reused)" if r["reused"] else ""),
                    pct(r["test_accuracy"]), f"[{pct(r['ci_low'])}, {pct(r['ci_high'])}]",
                    "-" if r["fit_seconds"] is None else f"{r['fit_seconds']:.2f}",
                    "-" if r["epochs"] is None else r["epochs"],
                    "-" if r["p_vs_other"] is None else f"{r['p_vs_other']:.3g}"] for r in rows],
                  [r["approach"] for r in rows], text_columns=(2,))
    folder = layout.CURVE_REPORT_DIR.relative_to(layout.REPORTS_DIR).as_posix()
    return Section("Learning curve", [
        result["text"] + ".",
        f"Each model retrained on nested, stratified, seeded subsets of the training split and tested on the same "
        f"{n_test:,} test images; '(reused)': the model already trained on the whole split. The crossover is the "
        f"smallest size from which one approach is significantly better (McNemar p < {result['alpha']:g}) at every "
        f"larger size; it lies between that size and the one below (docs: Learning curves)."],
        tables=[table], pictures=[Picture(f"{folder}/learning_curve.png", "test accuracy against training images",
                                          width=640)])

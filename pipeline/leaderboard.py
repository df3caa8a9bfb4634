"""The leaderboard as data: ranking, the summary DVC tracks, the verdict line and the tables.

Pure functions over rows (dicts as :func:`pipeline.results.model_row` builds them): no
files, no MLflow. The printed and markdown tables are one renderer (pandas ``to_markdown``,
i.e. tabulate) in two formats; the CSV is pandas ``to_csv``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from pipeline.errors import DataError

APPROACHES = ("classical", "deep")
CSV_COLUMNS = [
    "rank", "approach", "model", "feature", "classifier", "arch", "test_accuracy", "macro_f1",
    "val_accuracy", "param_count", "model_bytes", "fit_seconds", "predict_images_per_s",
    "dataset", "split_sha256", "mlflow_run_id",
]


def name_list(names: Sequence[str], limit: int = 6) -> str:
    """``a, b, c (+4 more)``: a list short enough for a one-line message."""
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def check_same_split(rows: Sequence[Mapping[str, Any]]) -> str:
    """The one split every row was evaluated on; :class:`DataError` naming the odd ones out."""
    by_split: dict[str, list[str]] = {}
    for row in rows:
        by_split.setdefault(row["split_sha256"], []).append(row["model"])
    if len(by_split) > 1:
        groups = sorted(by_split.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        parts = "; ".join(f"{name_list(models)} on split {sha[:12]}" for sha, models in groups)
        raise DataError(f"cannot compare models trained on different splits: {parts}; "
                        f"rerun `dvc repro` so every model uses the current split")
    return next(iter(by_split))


def rank_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Sorted by test accuracy (then macro-F1, fewer parameters, id); equal accuracy, equal rank.

    Ranks are "competition" ranks (1, 2, 2, 4): a tie shares the better rank and the next
    model's rank counts the tied ones.
    """
    ordered = sorted((dict(r) for r in rows),
                     key=lambda r: (-r["test_accuracy"], -r["macro_f1"], r["param_count"], r["model"]))
    for i, row in enumerate(ordered):
        same = i > 0 and row["test_accuracy"] == ordered[i - 1]["test_accuracy"]
        row["rank"] = ordered[i - 1]["rank"] if same else i + 1
    return ordered


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


def subtitle(summary: Mapping[str, Any]) -> str:
    """``digits, 10 models, split 0123456789ab``: the second line of every title."""
    return (f"{summary['dataset'] or 'dataset ?'}, {summary['n_models']} models, "
            f"split {summary['split_sha256'][:12]}")


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


# --- tables ---------------------------------------------------------------------------------

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


# (header, alignment, cell) of the printed and markdown tables
DISPLAY: tuple[tuple[str, str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("#", "right", lambda r: str(r["rank"])),
    ("approach", "left", lambda r: r["approach"]),
    ("model", "left", lambda r: r["model"]),
    ("feature / arch", "left", lambda r: r["feature"] or r["arch"]),
    ("classifier", "left", lambda r: r["classifier"] or "-"),
    ("test acc %", "right", lambda r: f"{100 * r['test_accuracy']:.2f}"),
    ("macro-F1", "right", lambda r: f"{r['macro_f1']:.4f}"),
    ("params", "right", lambda r: f"{r['param_count']:,}"),
    ("fit s", "right", lambda r: _fmt_seconds(r["fit_seconds"])),
    ("predict img/s", "right", lambda r: _fmt_rate(r["predict_images_per_s"])),
    ("size", "right", lambda r: _fmt_bytes(r["model_bytes"])),
)


def _render(rows: Sequence[Mapping[str, Any]], tablefmt: str, cell_text: Callable[[str, str], str]) -> str:
    import pandas as pd

    cells = [[cell_text(header, cell(r)) for header, _, cell in DISPLAY] for r in rows]
    frame = pd.DataFrame(cells, columns=[header for header, _, _ in DISPLAY])
    # disable_numparse: the cells are already formatted; tabulate must not reformat "97.40" as 97.4
    return frame.to_markdown(index=False, tablefmt=tablefmt, colalign=[align for _, align, _ in DISPLAY],
                             disable_numparse=True)


def text_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The leaderboard as printed: a header, a rule and one aligned line per model."""
    return "\n".join(line.rstrip() for line in _render(rows, "simple", lambda _, text: text).splitlines())


def markdown_table(rows: Sequence[Mapping[str, Any]], title: str, verdict_line: str) -> str:
    """``leaderboard.md``: the title, the table (model ids as code) and the verdict."""
    def cell_text(header: str, text: str) -> str:
        return f"`{text}`" if header == "model" else text.replace("|", "\\|")

    return "\n".join([f"# {title}", "", _render(rows, "pipe", cell_text), "", verdict_line, ""])


def dataframe(rows: Sequence[Mapping[str, Any]], *, exact: bool = False):
    """The rows as a pandas DataFrame with :data:`CSV_COLUMNS`.

    ``exact`` keeps every cell the Python object it is (object dtype), so an int column with
    a missing value is not turned into floats.
    """
    import pandas as pd

    records = [[r.get(k) for k in CSV_COLUMNS] for r in rows]
    return pd.DataFrame(records, columns=CSV_COLUMNS, dtype=object if exact else None)


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """``leaderboard.csv``: :data:`CSV_COLUMNS`, a missing value as an empty cell."""
    return dataframe(rows, exact=True).to_csv(index=False, lineterminator="\n", na_rep="")

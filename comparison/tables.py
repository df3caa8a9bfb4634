"""The leaderboard's tables: printed, markdown (one renderer, pandas ``to_markdown``, i.e.
tabulate, in two formats) and CSV (pandas ``to_csv``), and the number formats they share.

Repeats (``evaluation.repeats``): the tables show a ``mean ± sd (seeds)`` column only when some
model was trained more than once, so with one seed per model they look as before; the CSV
always has the columns (empty when a model's metrics do not record them).

The metric (:class:`comparison.metrics.Metric`) decides the first score columns: with
accuracy ``test acc %``, its interval, ``≈ top`` and ``val acc %``, then ``bal acc %``; with
balanced accuracy ``bal acc %``, its interval, ``≈ top`` and ``val bal acc %``, then ``test acc %``.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from comparison.metrics import Metric

CSV_COLUMNS = [
    "rank", "approach", "model", "feature", "classifier", "arch", "test_accuracy", "test_accuracy_ci_low",
    "test_accuracy_ci_high", "near_top", "p_value_vs_top", "macro_f1", "macro_f1_ci_low", "macro_f1_ci_high",
    "balanced_accuracy", "balanced_accuracy_ci_low", "balanced_accuracy_ci_high",
    "val_accuracy", "val_balanced_accuracy", "repeats", "test_accuracy_mean", "test_accuracy_sd", "macro_f1_mean",
    "macro_f1_sd",
    "val_accuracy_mean", "n_test", "param_count", "model_bytes", "fit_seconds", "predict_images_per_s",
    "dataset", "split_sha256", "mlflow_run_id",
]
SELECTION = "validation accuracy"
SEEDS_HEADER = "mean ± sd (seeds)"


def p_text(p: float) -> str:
    """A p-value as a reader wants it: ``0.38``, ``0.039``, ``0.008``, ``<0.001``, ``1``."""
    if p < 0.001:
        return "<0.001"
    if p >= 0.9995:
        return "1"
    return f"{p:.2f}" if p >= 0.1 else f"{p:.3f}"


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


def _percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def repeated(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether some row's model was trained with more than one seed."""
    return any((r.get("repeats") or 1) > 1 for r in rows)


def mean_sd(mean: float, sd: float) -> str:
    """``97.9 ± 0.3``: a mean and sd of accuracies in percent, with decimals enough that a
    non-zero sd does not print as 0.0 (the mean gets as many)."""
    digits = 1
    while sd and round(100 * sd, digits) == 0 and digits < 4:
        digits += 1
    return f"{100 * mean:.{digits}f} ± {100 * sd:.{digits}f}"


def _seeds(row: Mapping[str, Any]) -> str:
    n, mean, sd = row.get("repeats"), row.get("test_accuracy_mean"), row.get("test_accuracy_sd")
    return "-" if not n or n < 2 or mean is None or sd is None else f"{mean_sd(mean, sd)} ({n})"


def _interval(row: Mapping[str, Any], key: str = "test_accuracy") -> str:
    low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    return "-" if low is None or high is None else f"[{100 * low:.1f}, {100 * high:.1f}]"


Column = tuple[str, str, Callable[[Mapping[str, Any]], str]]


def columns(level: str = "95 %", seeds: bool = False, metric: Metric = Metric()) -> tuple[Column, ...]:
    """(header, alignment, cell) of the printed and markdown tables; ``level`` names the interval;
    ``seeds`` adds :data:`SEEDS_HEADER` (test accuracy over the seeds) after it; ``metric``
    puts its own test score, interval, ≈ top and validation score first."""
    accuracy = ("test acc %", "right", lambda r: _percent(r["test_accuracy"]))
    balanced = ("bal acc %", "right", lambda r: _percent(r.get("balanced_accuracy")))
    if metric.name == "accuracy":
        first = (accuracy, (f"{level} CI", "right", _interval))
        val, other = ("val acc %", "right", lambda r: _percent(r.get("val_accuracy"))), balanced
    else:
        first = (balanced, (f"{level} CI", "right", lambda r: _interval(r, "balanced_accuracy")))
        val, other = ("val bal acc %", "right", lambda r: _percent(r.get("val_balanced_accuracy"))), accuracy
    display = (
        ("#", "right", lambda r: str(r["rank"])),
        ("approach", "left", lambda r: r["approach"]),
        ("model", "left", lambda r: r["model"]),
        ("feature / arch", "left", lambda r: r["feature"] or r["arch"]),
        ("classifier", "left", lambda r: r["classifier"] or "-"),
        *first,
        ("≈ top", "left", lambda r: r.get("near_top") or ""),
        val,
        other,
        ("macro-F1", "right", lambda r: f"{r['macro_f1']:.4f}"),
        ("params", "right", lambda r: f"{r['param_count']:,}"),
        ("fit s", "right", lambda r: _fmt_seconds(r["fit_seconds"])),
        ("predict img/s", "right", lambda r: _fmt_rate(r["predict_images_per_s"])),
        ("size", "right", lambda r: _fmt_bytes(r["model_bytes"])),
    )
    return display[:7] + ((SEEDS_HEADER, "right", _seeds),) + display[7:] if seeds else display


DISPLAY = columns()


def legend(rows: Sequence[Mapping[str, Any]], level: str = "95 %", code: bool = False,
           metric: Metric = Metric()) -> str:
    """What the interval and ≈ top columns mean, and how the verdict's models were chosen."""
    n = rows[0].get("n_test") if rows else None
    top = f"`{rows[0]['model']}`" if code and rows else (rows[0]["model"] if rows else "?")
    images = f" on {n:,} test images" if n else ""
    seeds = (f" {SEEDS_HEADER}: mean and sample sd of the test accuracy over the training seeds (their number "
             f"in parentheses; - for a model trained once); every other number is the first seed's."
             if repeated(rows) else "")
    if metric.name == "accuracy":
        interval, test = "Wilson interval of the test accuracy", "McNemar's exact test does not reject"
    else:
        interval = "percentile bootstrap interval of the test balanced accuracy"
        test = "the paired permutation test does not reject"
    return (f"{level} CI: {interval}{images}. ≈ top: yes = not significantly worse "
            f"than #1 {top} (the {level} paired-bootstrap interval of the {metric.label} difference contains 0, or "
            f"{test}).{seeds} Ranked by test {metric.label}; the verdict compares the best model of each approach "
            f"by {metric.selection}.")


def _render(rows: Sequence[Mapping[str, Any]], tablefmt: str, cell_text: Callable[[str, str], str],
            level: str, metric: Metric) -> str:
    import pandas as pd

    display = columns(level, seeds=repeated(rows), metric=metric)
    cells = [[cell_text(header, cell(r)) for header, _, cell in display] for r in rows]
    frame = pd.DataFrame(cells, columns=[header for header, _, _ in display])
    # disable_numparse: the cells are already formatted; tabulate must not reformat "97.40" as 97.4
    return frame.to_markdown(index=False, tablefmt=tablefmt, colalign=[align for _, align, _ in display],
                             disable_numparse=True)


def text_table(rows: Sequence[Mapping[str, Any]], level: str = "95 %", metric: Metric = Metric()) -> str:
    """The leaderboard as printed: a header, a rule and one aligned line per model."""
    lines = _render(rows, "simple", lambda _, text: text, level, metric).splitlines()
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: Sequence[Mapping[str, Any]], title: str, verdict_line: str, level: str = "95 %",
                   metric: Metric = Metric()) -> str:
    """``leaderboard.md``: the title, the table (model ids as code), the legend and the verdict."""
    def cell_text(header: str, text: str) -> str:
        return f"`{text}`" if header == "model" else text.replace("|", "\\|")

    return "\n".join([f"# {title}", "", _render(rows, "pipe", cell_text, level, metric), "",
                      legend(rows, level, code=True, metric=metric), "", verdict_line, ""])


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

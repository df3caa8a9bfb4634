"""The leaderboard as data: ranking, selection on validation, the summary DVC tracks.

Pure functions over rows (dicts as :func:`comparison.results.model_row` builds them, plus the
statistics of :func:`comparison.statistics.with_statistics`): no files, no MLflow. The table is
ranked by the test score of the metric (:class:`comparison.metrics.Metric`: accuracy, or
balanced accuracy on imbalanced classes) -- a report; the best model of each approach, the
one the verdict compares, is selected on the validation score of the same metric
(:func:`select_best`), and so are the models ``compare`` registers (:func:`choose`). The
tables are :mod:`comparison.tables` (re-exported here).

Repeats (``evaluation.repeats``): every number of a row is the model's FIRST seed's (the seed
the verdict's per-image test uses); ``test_accuracy_mean``/``_sd`` over ``repeats`` seeds are
context.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from comparison.errors import ComparisonError
from comparison.metrics import Metric
from comparison.tables import (  # noqa: F401  (the leaderboard's public names, tables included)
    CSV_COLUMNS, DISPLAY, SEEDS_HEADER, SELECTION, columns, csv_text, dataframe, legend, markdown_table, mean_sd,
    p_text, repeated, text_table)

APPROACHES = ("classical", "deep")


def name_list(names: Sequence[str], limit: int = 6) -> str:
    """``a, b, c (+4 more)``: a list short enough for a one-line message."""
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def check_same_split(rows: Sequence[Mapping[str, Any]]) -> str:
    """The one split every row was evaluated on; :class:`ComparisonError` naming the odd ones out."""
    by_split: dict[str, list[str]] = {}
    for row in rows:
        by_split.setdefault(row["split_sha256"], []).append(row["model"])
    if len(by_split) > 1:
        groups = sorted(by_split.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        parts = "; ".join(f"{name_list(models)} on split {sha[:12]}" for sha, models in groups)
        raise ComparisonError(f"cannot compare models trained on different splits: {parts}; "
                        f"rerun `dvc repro` so every model uses the current split")
    return next(iter(by_split))


def rank_rows(rows: Iterable[Mapping[str, Any]], metric: Metric = Metric()) -> list[dict]:
    """Sorted by the test score of ``metric`` (then test accuracy, macro-F1, fewer parameters,
    id); equal score, equal rank.

    Ranks are "competition" ranks (1, 2, 2, 4): a tie shares the better rank and the next
    model's rank counts the tied ones.
    """
    key = metric.test_key
    ordered = sorted((dict(r) for r in rows),
                     key=lambda r: (-r[key], -r["test_accuracy"], -r["macro_f1"], r["param_count"], r["model"]))
    for i, row in enumerate(ordered):
        same = i > 0 and row[key] == ordered[i - 1][key]
        row["rank"] = ordered[i - 1]["rank"] if same else i + 1
    return ordered


def select_best(rows: Iterable[Mapping[str, Any]], metric: Metric = Metric()) -> dict[str, dict | None]:
    """The best model of each approach: highest validation score of ``metric`` (accuracy or
    balanced accuracy), then fewer parameters, then model id. Test scores play no part (the
    verdict is measured on test).

    With ``evaluation.repeats`` > 1 this is the FIRST seed's validation accuracy (``val_accuracy``,
    the seed whose predictions the verdict compares), not ``val_accuracy_mean``. A possible
    refinement: choose a stochastic model on its mean validation accuracy over the seeds.

    Raises:
        ComparisonError: a model has no validation score of ``metric`` recorded.
    """
    rows = list(rows)
    missing = [r["model"] for r in rows if r.get(metric.val_key) is None]
    if missing:
        raise ComparisonError(f"no {metric.val_key} recorded for {name_list(missing)}: the best model of each approach "
                              f"is chosen on {metric.selection}; rerun their train stages (`dvc repro`)")
    best: dict[str, dict | None] = {}
    for approach in APPROACHES:
        mine = [r for r in rows if r["approach"] == approach]
        best[approach] = dict(min(mine, key=lambda r: _rank_key(r, metric))) if mine else None
    return best


def _entry(row: Mapping[str, Any] | None) -> dict | None:
    if row is None:
        return None
    keys = ("model", "val_accuracy", "test_accuracy", "test_accuracy_ci_low", "test_accuracy_ci_high",
            "val_balanced_accuracy", "balanced_accuracy", "balanced_accuracy_ci_low", "balanced_accuracy_ci_high",
            "macro_f1", "param_count", "fit_seconds", "repeats", "test_accuracy_mean", "test_accuracy_sd")
    return {key: row.get(key) for key in keys}


def build_summary(rows: Sequence[Mapping[str, Any]], verdict: Mapping[str, Any] | None = None,
                  metric: Metric = Metric()) -> dict:
    """Best model of each approach (on validation ``metric``), their test difference and the verdict.

    ``verdict`` is :func:`comparison.verdict.verdict_fields` of the paired comparison of the
    two selected models on ``metric`` (None when one approach has no model); its ``winner`` --
    "deep", "classical" or "no significant difference" -- is the summary's. When both models
    record ``test_accuracy_mean``, the verdict gains ``mean_difference`` (deep - classical of
    the means). ``metric`` is the summary's ``metric`` object (:meth:`Metric.fields`);
    ``accuracy_difference`` is of test accuracy whatever the metric.
    """
    best = select_best(rows, metric)
    difference = None
    c, d = best["classical"], best["deep"]
    if c and d:
        difference = round(d["test_accuracy"] - c["test_accuracy"], 6)
    verdict = dict(verdict) if verdict else None
    if verdict and c and d and c.get("test_accuracy_mean") is not None and d.get("test_accuracy_mean") is not None:
        verdict["mean_difference"] = round(d["test_accuracy_mean"] - c["test_accuracy_mean"], 6)
    return {
        "best_classical": _entry(best["classical"]),
        "best_deep": _entry(best["deep"]),
        "selection": metric.selection,
        "metric": metric.fields(),
        "accuracy_difference": difference,
        "verdict": verdict,
        "winner": verdict["winner"] if verdict else None,
        "n_models": len(rows),
        "dataset": rows[0]["dataset"] if rows else "",
        "split_sha256": rows[0]["split_sha256"] if rows else "",
    }


def subtitle(summary: Mapping[str, Any]) -> str:
    """``digits, 10 models, split 0123456789ab``: the second line of every title."""
    return (f"{summary['dataset'] or 'dataset ?'}, {summary['n_models']} models, "
            f"split {summary['split_sha256'][:12]}")


def _rank_key(row: Mapping[str, Any], metric: Metric) -> tuple:
    """:func:`select_best`'s order: highest validation score of ``metric``, fewer parameters, model id."""
    return -row[metric.val_key], row["param_count"], row["model"]


def choose(summary: Mapping[str, Any]) -> dict[str, str]:
    """``{alias: model id}`` of the summary's validation-selected best models (``best-classical``,
    ``best-deep``) and the ``champion``, the better of those two by the same rule (never by
    test accuracy: the test images only measure, as in the verdict), on the summary's metric."""
    metric = Metric.of_summary(summary)
    best = {"best-classical": summary.get("best_classical"), "best-deep": summary.get("best_deep")}
    present = [row for row in best.values() if row]
    chosen = {alias: row["model"] for alias, row in best.items() if row}
    if present:
        chosen["champion"] = min(present, key=lambda r: _rank_key(r, metric))["model"]
    return chosen


def evaluate(rows: Sequence[Mapping[str, Any]], images: Any, metric: Metric, settings: Any,
             budget_of: Any = None) -> tuple[list[dict], dict, str]:
    """The leaderboard from the models' rows and their test ``images``
    (:class:`comparison.statistics.TestImages`): ranked rows with their statistics under
    ``settings`` (:class:`comparison.statistics.Settings`), the summary with the verdict (the best
    deep model against the best classical one, chosen on validation by ``metric``; ``budget_of(best)``
    says what each was given) and the verdict's line."""
    from comparison import statistics
    from comparison.verdict import verdict_fields, verdict_line

    rows = rank_rows(statistics.scored(rank_rows(rows), images, settings), metric)
    rows = statistics.with_statistics(rows, images, settings)
    best = select_best(rows, metric)
    comparison = given = None
    if best["classical"] and best["deep"]:  # a = deep, b = classical: difference = deep - classical
        comparison = settings.compare_models(images.predictions[best["deep"]["model"]],
                                             images.predictions[best["classical"]["model"]])
        given = budget_of(best) if budget_of else None
    summary = build_summary(rows, verdict_fields(comparison, given), metric)
    return rows, summary, verdict_line(summary, settings.level)

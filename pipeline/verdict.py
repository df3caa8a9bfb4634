"""The statistics behind the leaderboard and the verdict, and the verdict's words.

Selection on validation, verdict on test: the best model of each approach is the one with
the highest validation accuracy (:func:`pipeline.leaderboard.select_best`), and only those
two are compared on the test images, paired image by image
(:func:`models.statistics.compare_paired`: a paired bootstrap interval of the accuracy
difference and McNemar's exact test, as Dietterich 1998 recommends for models trained once
on one split). A difference counts as significant exactly when its interval excludes 0 and
McNemar's p is below ``evaluation.alpha`` (both must agree: with few discordant images the
percentile bootstrap interval is too narrow); the same rule marks the leaderboard's models
that are not significantly worse than the top-ranked one.

With ``evaluation.repeats`` > 1 the per-image test stays the decision (it compares the first
seed's predictions); the verdict line adds the mean ± sd of each chosen model's test accuracy
over its seeds as context.

Everything here reads the per-image predictions of :mod:`pipeline.results` (all models must
have predicted the same test images) and otherwise works on leaderboard rows and
:class:`models.statistics.PairedComparison` objects; nothing is written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from models.statistics import PairedComparison, compare_paired, mcnemar_exact
from pipeline import results
from pipeline.errors import DataError
from pipeline.leaderboard import mean_sd, p_text

ACCURACY_TOLERANCE = 2e-6  # recorded accuracies are rounded to 6 decimals


@dataclass(frozen=True)
class Settings:
    """How every interval and test is computed: ``evaluation`` in params.yaml, seeds = ``seed``."""

    confidence: float = 0.95
    resamples: int = 2000
    alpha: float = 0.05
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: Any) -> "Settings":
        ev = cfg.evaluation
        return cls(float(ev.confidence), int(ev.bootstrap_resamples), float(ev.alpha), int(cfg.seed))

    def compare(self, correct_a: np.ndarray, correct_b: np.ndarray) -> PairedComparison:
        return compare_paired(correct_a, correct_b, resamples=self.resamples, seed=self.seed,
                              confidence=self.confidence, alpha=self.alpha)

    @property
    def level(self) -> str:
        """``95 %``: the confidence as printed."""
        return f"{100 * self.confidence:g} %"


@dataclass(frozen=True, eq=False)
class TestImages:
    """Every compared model's predictions on the same test images."""

    predictions: Mapping[str, results.Predictions]

    @property
    def n(self) -> int:
        return len(next(iter(self.predictions.values())))

    def correct(self, model: str) -> np.ndarray:
        return self.predictions[model].correct


def read_test_images(rows: Sequence[Mapping[str, Any]]) -> TestImages:
    """The test predictions of every row, checked: the same images with the same labels, and
    the accuracy each model's metrics record (else the files are from different runs)."""
    preds: dict[str, results.Predictions] = {}
    first = None
    for row in rows:
        model = row["model"]
        p = results.read_predictions(model, "test")
        stage = results.stage_for(row["approach"], model)
        where = results.predictions_path(model, "test")
        if first is None:
            first = (model, p)
        elif not (np.array_equal(p.index, first[1].index) and np.array_equal(p.y_true, first[1].y_true)):
            raise DataError(f"{where}: not the same test images (index, y_true) as "
                            f"{results.predictions_path(first[0], 'test')}; rerun `dvc repro` so every model "
                            f"predicts the current split")
        accuracy = float(np.mean(p.correct))
        if abs(accuracy - row["test_accuracy"]) > ACCURACY_TOLERANCE:
            raise DataError(f"{where}: accuracy {accuracy:.6f}, but {model}'s recorded test_accuracy is "
                            f"{row['test_accuracy']:.6f}; rerun `dvc repro {stage}`")
        preds[model] = p
    return TestImages(preds)


def with_statistics(rows: Sequence[Mapping[str, Any]], images: TestImages, settings: Settings) -> list[dict]:
    """Ranked rows plus ``n_test``, the test-accuracy and macro-F1 intervals (recorded by the
    train stage, else computed here the same way) and, against the top-ranked model,
    ``near_top`` ("yes" when not significantly worse) and ``p_value_vs_top``."""
    out = []
    top = rows[0]["model"] if rows else None
    for row in rows:
        row = dict(row)
        p = images.predictions[row["model"]]
        row["n_test"] = len(p)
        if any(row.get(key) is None for key in results.INTERVAL_KEYS):
            row.update(results.score_intervals(p, p.scores.shape[1], seed=settings.seed,
                                               confidence=settings.confidence, resamples=settings.resamples))
        if row["model"] == top:
            row["near_top"], row["p_value_vs_top"] = "yes", None
        else:
            comparison = settings.compare(images.correct(top), images.correct(row["model"]))
            row["near_top"] = "" if comparison.significant else "yes"
            row["p_value_vs_top"] = float(f"{comparison.p_value:.6g}")
        out.append(row)
    return out


def pairwise_pvalues(models: Sequence[str], images: TestImages) -> np.ndarray:
    """McNemar's exact p-value of every pair of ``models`` (symmetric; NaN on the diagonal)."""
    k = len(models)
    matrix = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(i + 1, k):
            matrix[i, j] = matrix[j, i] = mcnemar_exact(images.correct(models[i]), images.correct(models[j]))[2]
    return matrix


# --- words ----------------------------------------------------------------------------------

def format_p(p: float) -> str:
    """``p = 0.39``, ``p = 0.008``, ``p < 0.001``, ``p = 1``."""
    text = p_text(p)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def _digits(points: float) -> int:
    """Decimals enough that a non-zero difference in points does not print as 0.0."""
    digits = 1
    while points and round(points, digits) == 0 and digits < 4:
        digits += 1
    return digits


def _fmt_fit(s: float | None) -> str:
    if s is None:
        return "?"
    if s >= 100:
        return f"{s:,.0f}"
    return f"{s:.1f}" if s >= 0.1 else f"{s:.2g}"


def claim(a: str, b: str, *, difference: float, ci_low: float, ci_high: float, p_value: float,
          only_a: int, only_b: int, significant: bool, level: str = "95 %") -> tuple[str, bool]:
    """The comparison of ``a`` and ``b`` (``difference`` = accuracy a - accuracy b) in words,
    the better one first; ``significant``: :attr:`PairedComparison.significant` (the interval
    excludes 0 and McNemar's test rejects). Returns (text, whether b came first)."""
    swapped = difference < 0
    if swapped:
        a, b, only_a, only_b = b, a, only_b, only_a
        difference, ci_low, ci_high = -difference, -ci_high, -ci_low
    points = 100 * difference
    digits = _digits(points)
    pts = f"{points:.{digits}f}"
    numbers = (f"{level} CI [{100 * ci_low:.{digits}f}, {100 * ci_high:.{digits}f}], McNemar {format_p(p_value)} "
               f"({only_a} vs {only_b} images)")
    if significant:
        return f"{a} beats {b} by {pts} points, {numbers}", swapped
    who = f"{a} and {b} tie" if difference == 0 else f"{a} ahead of {b} by {pts} points"
    if ci_low > 0:  # the interval alone would call it, McNemar's exact test does not
        numbers += " (the interval excludes 0, but McNemar's exact test does not reject on so few discordant images)"
    return f"no significant difference at this test-set size: {who}, {numbers}", swapped


def _needed(significant: bool, difference: float, images_needed: int | None) -> str:
    """``; about N test images would be needed ...`` after a difference that is not significant."""
    if significant or not images_needed:
        return ""
    points = 100 * abs(difference)
    return (f"; about {images_needed:,} test images would be needed to detect a "
            f"{points:.{_digits(points)}f}-point difference")


def _cost(first: Mapping[str, Any], second: Mapping[str, Any]) -> str:
    return (f"{first['param_count']:,} vs {second['param_count']:,} parameters and "
            f"{_fmt_fit(first.get('fit_seconds'))} s vs {_fmt_fit(second.get('fit_seconds'))} s fit")


def _seed_count(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def over_seeds(classical: Mapping[str, Any], deep: Mapping[str, Any]) -> str:
    """``; over 3 seeds: classical (a) 99.1 ± 0.2 %, deep (b) 97.5 ± 0.4 % (mean ± sd of test
    accuracy)`` when either model was trained with more than one seed, else ``""``. With
    different seed counts each model names its own (``... 99.1 % over 1 seed, ...``); a model
    without recorded means is left out."""
    entries = [(f"{name} ({e['model']})", e.get("repeats") or 1, e.get("test_accuracy_mean"), e.get("test_accuracy_sd"))
               for name, e in (("classical", classical), ("deep", deep))]
    entries = [(label, n, mean, sd) for label, n, mean, sd in entries if mean is not None and sd is not None]
    if not any(n > 1 for _, n, _, _ in entries):
        return ""

    def value(n: int, mean: float, sd: float) -> str:
        return f"{mean_sd(mean, sd)} %" if n > 1 else f"{100 * mean:.1f} %"

    counts = {n for _, n, _, _ in entries}
    if len(counts) == 1:
        parts = ", ".join(f"{label} {value(n, mean, sd)}" for label, n, mean, sd in entries)
        return f"; over {_seed_count(counts.pop())}: {parts} (mean ± sd of test accuracy)"
    parts = ", ".join(f"{label} {value(n, mean, sd)} over {_seed_count(n)}" for label, n, mean, sd in entries)
    return f"; {parts} (mean ± sd of test accuracy)"


def verdict_line(summary: Mapping[str, Any], level: str = "95 %") -> str:
    """The verdict of ``summary.json`` in one line: the classical and deep models chosen on
    validation accuracy, compared on the test images, with their cost; with several seeds,
    their mean test accuracy (:func:`over_seeds`) -- context, the per-image test decides."""
    c, d, v = summary["best_classical"], summary["best_deep"], summary.get("verdict")
    if not (c and d and v):
        only = c or d
        approach = "classical" if c else "deep"
        return (f"only {approach} models to compare: best {only['model']} (chosen on validation accuracy), "
                f"test accuracy {100 * only['test_accuracy']:.2f} %")
    text, swapped = claim(f"deep ({d['model']})", f"classical ({c['model']})", difference=v["difference"],
                          ci_low=v["ci_low"], ci_high=v["ci_high"], p_value=v["p_value"], only_a=v["only_deep"],
                          only_b=v["only_classical"], significant=v["significant"], level=level)
    first, second = (c, d) if swapped else (d, c)
    return (f"{text}, with {_cost(first, second)} (best of each approach chosen on validation accuracy, "
            f"compared on {v['n_test']:,} test images){_needed(v['significant'], v['difference'], v['images_needed'])}"
            f"{over_seeds(c, d)}")


def pair_line(a: Mapping[str, Any], b: Mapping[str, Any], comparison: PairedComparison, level: str = "95 %") -> str:
    """``cvd compare --pair A B``: rows ``a`` and ``b`` compared on the same test images."""
    text, swapped = claim(a["model"], b["model"], difference=comparison.difference, ci_low=comparison.ci_low,
                          ci_high=comparison.ci_high, p_value=comparison.p_value, only_a=comparison.only_a,
                          only_b=comparison.only_b, significant=comparison.significant, level=level)
    first, second = (b, a) if swapped else (a, b)
    return (f"{text}, with {_cost(first, second)} (compared on {comparison.n:,} test images)"
            f"{_needed(comparison.significant, comparison.difference, comparison.images_needed)}")


def verdict_fields(comparison: PairedComparison | None) -> dict | None:
    """The ``verdict`` object of summary.json from the comparison of the best deep model (a)
    with the best classical one (b): difference = deep - classical."""
    if comparison is None:
        return None
    c = comparison
    winner = ("no significant difference" if not c.significant else "deep" if c.difference > 0 else "classical")
    return {
        "difference": round(c.difference, 6), "ci_low": round(c.ci_low, 6), "ci_high": round(c.ci_high, 6),
        "p_value": float(f"{c.p_value:.6g}"), "only_classical": c.only_b, "only_deep": c.only_a,
        "n_test": c.n, "significant": c.significant, "images_needed": c.images_needed, "winner": winner,
    }

"""The verdict and the pairwise comparisons in words: the lines ``compare`` prints and
writes (``summary.json``'s ``verdict`` object, the leaderboard's last line, ``cvd compare --pair``).

With ``evaluation.repeats`` > 1 the per-image test stays the decision (it compares the first
seed's predictions); the verdict line adds the mean ± sd of each chosen model's test accuracy
over its seeds as context.

Every verdict names the metric it was decided on (:attr:`comparison.metrics.Metric.statement`):
with accuracy the test is McNemar's; with balanced accuracy a paired permutation test (McNemar's
with each image weighed by its class), and the difference is in points of balanced accuracy.

Each side's budget -- training images, the CNN's epochs, fit seconds (:func:`budget_fields`,
``summary.json``'s ``verdict.budget``) -- ends the verdict line, so a win is read with what it
was given.
"""
from __future__ import annotations

from typing import Any, Mapping

from comparison.metrics import LABELS, Metric
from comparison.tables import mean_sd, p_text
from models.statistics import PairedComparison


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
          only_a: int, only_b: int, significant: bool, level: str = "95 %",
          metric: str = "accuracy") -> tuple[str, bool]:
    """The comparison of ``a`` and ``b`` (``difference`` = ``metric`` of a - that of b) in words,
    the better one first; ``significant``: :attr:`PairedComparison.significant` (the interval
    excludes 0 and the test rejects: McNemar's for accuracy, the paired permutation test for
    balanced accuracy). Returns (text, whether b came first)."""
    swapped = difference < 0
    if swapped:
        a, b, only_a, only_b = b, a, only_b, only_a
        difference, ci_low, ci_high = -difference, -ci_high, -ci_low
    points = 100 * difference
    digits = _digits(points)
    unit = "points" if metric == "accuracy" else f"points of {LABELS[metric]}"
    pts = f"{points:.{digits}f} {unit}"
    test = "McNemar" if metric == "accuracy" else "permutation"
    numbers = (f"{level} CI [{100 * ci_low:.{digits}f}, {100 * ci_high:.{digits}f}], {test} {format_p(p_value)} "
               f"({only_a} vs {only_b} images)")
    if significant:
        return f"{a} beats {b} by {pts}, {numbers}", swapped
    who = f"{a} and {b} tie" if difference == 0 else f"{a} ahead of {b} by {pts}"
    if ci_low > 0:  # the interval alone would call it, the test does not
        exact = "McNemar's exact test" if metric == "accuracy" else "the permutation test"
        numbers += f" (the interval excludes 0, but {exact} does not reject on so few discordant images)"
    return f"no significant difference at this test-set size: {who}, {numbers}", swapped


def _needed(significant: bool, difference: float, images_needed: int | None) -> str:
    """``; about N test images would be needed ...`` after a difference that is not significant."""
    if significant or not images_needed:
        return ""
    points = 100 * abs(difference)
    return (f"; about {images_needed:,} test images would be needed to detect a "
            f"{points:.{_digits(points)}f}-point difference")


def _cost(first: Mapping[str, Any], second: Mapping[str, Any], seconds: bool = True) -> str:
    params = f"{first['param_count']:,} vs {second['param_count']:,} parameters"
    if not seconds:  # the budget sentence states them
        return params
    return f"{params} and {_fmt_fit(first.get('fit_seconds'))} s vs {_fmt_fit(second.get('fit_seconds'))} s fit"


def _count(n: Any) -> int | None:
    return None if n is None else int(n)


def budget_fields(classical: Mapping[str, Any], deep: Mapping[str, Any], *, train_images: int | None,
                  val_images: int | None, search: bool) -> dict:
    """``verdict.budget`` of summary.json: what the two compared models were given.

    ``classical``/``deep``: their leaderboard rows (``fit_seconds``; the CNN's ``epochs_run``
    and ``best_epoch``). Both fit on the ``train_images`` (None: unknown); with ``search`` the
    classical grid search is scored on the ``val_images`` and refitted on both. The CNN only
    validates on them (early stopping), so its images are the training ones.
    """
    refit = search and train_images is not None and val_images is not None
    return {
        "classical": {"model": classical["model"], "fit_seconds": classical.get("fit_seconds"), "search": bool(search),
                      "train_images": train_images + val_images if refit else train_images},
        "deep": {"model": deep["model"], "fit_seconds": deep.get("fit_seconds"), "train_images": train_images,
                 "epochs_run": _count(deep.get("epochs_run")), "best_epoch": _count(deep.get("best_epoch"))},
    }


def budget_text(budget: Mapping[str, Any], classical_first: bool = False) -> str:
    """``deep (lenet5) 30 epochs (epoch 24's weights kept) in 17.9 s, classical (hog-knn) one fit in
    0.023 s, both on 1,221 training images``: the two sides of :func:`budget_fields` in words, in
    the verdict's order (``classical_first`` when the classical model leads it)."""
    c, d = budget["classical"], budget["deep"]

    def images(side: Mapping[str, Any]) -> str:
        n = side.get("train_images")
        return "" if n is None else f" on {n:,} training{' + validation' if side.get('search') else ''} images"

    same = c.get("train_images") == d.get("train_images") and not c.get("search")
    n = d.get("epochs_run")
    epochs = "? epochs" if n is None else f"{n} epoch{'s' if n != 1 else ''}"
    kept = "" if d.get("best_epoch") is None else f" (epoch {d['best_epoch']}'s weights kept)"
    fit = "grid search and refit" if c.get("search") else "one fit"
    both = f", both{images(d)}" if same and images(d) else ""
    sides = [f"deep ({d['model']}) {epochs}{kept}{'' if same else images(d)} in {_fmt_fit(d.get('fit_seconds'))} s",
             f"classical ({c['model']}) {fit}{'' if same else images(c)} in {_fmt_fit(c.get('fit_seconds'))} s"]
    return ", ".join(sides[::-1] if classical_first else sides) + both


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
    the validation score of the summary's metric, compared on the test images, with their cost;
    the metric and why (:attr:`comparison.metrics.Metric.statement`); with several seeds, their
    mean test accuracy (:func:`over_seeds`) -- context, the per-image test decides."""
    c, d, v = summary["best_classical"], summary["best_deep"], summary.get("verdict")
    metric = Metric.of_summary(summary)
    statement = f"; {metric.statement}" if summary.get("metric") else ""  # a summary.json of before it said
    if not (c and d and v):
        only = c or d
        approach = "classical" if c else "deep"
        return (f"only {approach} models to compare: best {only['model']} (chosen on {metric.selection}), "
                f"test {metric.label} {100 * only[metric.test_key]:.2f} %{statement}")
    text, swapped = claim(f"deep ({d['model']})", f"classical ({c['model']})", difference=v["difference"],
                          ci_low=v["ci_low"], ci_high=v["ci_high"], p_value=v["p_value"], only_a=v["only_deep"],
                          only_b=v["only_classical"], significant=v["significant"], level=level, metric=metric.name)
    first, second = (c, d) if swapped else (d, c)
    budget = v.get("budget")
    return (f"{text}, with {_cost(first, second, seconds=not budget)} (best of each approach chosen on "
            f"{metric.selection}, compared on {v['n_test']:,} test images)"
            f"{_needed(v['significant'], v['difference'], v['images_needed'])}{statement}"
            f"{'; budgets: ' + budget_text(budget, swapped) if budget else ''}{over_seeds(c, d)}")


def pair_line(a: Mapping[str, Any], b: Mapping[str, Any], comparison: PairedComparison, level: str = "95 %",
              metric: Metric | None = None) -> str:
    """``cvd compare --pair A B``: rows ``a`` and ``b`` compared on the same test images (on
    ``comparison.metric``; ``metric`` says how it was chosen)."""
    text, swapped = claim(a["model"], b["model"], difference=comparison.difference, ci_low=comparison.ci_low,
                          ci_high=comparison.ci_high, p_value=comparison.p_value, only_a=comparison.only_a,
                          only_b=comparison.only_b, significant=comparison.significant, level=level,
                          metric=comparison.metric)
    first, second = (b, a) if swapped else (a, b)
    return (f"{text}, with {_cost(first, second)} (compared on {comparison.n:,} test images)"
            f"{_needed(comparison.significant, comparison.difference, comparison.images_needed)}"
            f"{'; ' + metric.statement if metric else ''}")


def verdict_fields(comparison: PairedComparison | None, budget: Mapping[str, Any] | None = None) -> dict | None:
    """The ``verdict`` object of summary.json from the comparison of the best deep model (a)
    with the best classical one (b): difference = deep - classical, of ``comparison.metric``
    (named in ``metric``, with the ``test`` behind ``p_value``); ``budget`` (:func:`budget_fields`)
    is added as it is."""
    if comparison is None:
        return None
    c = comparison
    winner = ("no significant difference" if not c.significant else "deep" if c.difference > 0 else "classical")
    return {
        "difference": round(c.difference, 6), "ci_low": round(c.ci_low, 6), "ci_high": round(c.ci_high, 6),
        "p_value": float(f"{c.p_value:.6g}"), "only_classical": c.only_b, "only_deep": c.only_a,
        "n_test": c.n, "significant": c.significant, "images_needed": c.images_needed, "winner": winner,
        "metric": c.metric, "test": c.test,
        **({"budget": dict(budget)} if budget else {}),
    }

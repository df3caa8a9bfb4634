"""comparison.statistics and comparison.verdict: per-image statistics of the leaderboard and the verdict in words.

Synthetic per-image correctness with known discordant counts; prediction files in a
temporary directory (pipeline.results' writer).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import binomtest

from models.statistics import PairedComparison
from comparison import leaderboard, statistics, verdict
from pipeline import read_results

from helpers import write_model_predictions

N = 400
SETTINGS = statistics.Settings(confidence=0.95, resamples=2000, alpha=0.05, seed=3)
COST = {"hog-logreg": (21_178, 0.1496), "lenet5": (61_706, 5.677)}


def pair(only_a: int, only_b: int, both: int = 380, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of two models over ``n`` images: ``only_a`` right only for a, ``only_b`` only
    for b, ``both`` right for both, the rest wrong for both (shuffled with a fixed seed)."""
    a = np.zeros(n, dtype=bool)
    b = np.zeros(n, dtype=bool)
    a[:both] = b[:both] = True
    a[both:both + only_a] = True
    b[both + only_a:both + only_a + only_b] = True
    order = np.random.default_rng(0).permutation(n)
    return a[order], b[order]


def summary_of(comparison: PairedComparison) -> dict:
    """summary.json of hog-logreg vs lenet5 (``comparison``: deep = a, classical = b)."""
    rows = [{"approach": "classical", "model": "hog-logreg", "test_accuracy": comparison.accuracy_b,
             "val_accuracy": 0.99, "macro_f1": 0.9, "param_count": COST["hog-logreg"][0],
             "fit_seconds": COST["hog-logreg"][1], "dataset": "digits", "split_sha256": "s" * 64},
            {"approach": "deep", "model": "lenet5", "test_accuracy": comparison.accuracy_a, "val_accuracy": 0.98,
             "macro_f1": 0.9, "param_count": COST["lenet5"][0], "fit_seconds": COST["lenet5"][1],
             "dataset": "digits", "split_sha256": "s" * 64}]
    return leaderboard.build_summary(leaderboard.rank_rows(rows), verdict.verdict_fields(comparison))


def test_format_p():
    assert [verdict.format_p(p) for p in (1.0, 0.99951, 0.38, 0.1, 0.0996, 0.039, 0.00784, 0.001, 0.000999, 1e-30)] == [
        "p = 1", "p = 1", "p = 0.38", "p = 0.10", "p = 0.100", "p = 0.039", "p = 0.008", "p = 0.001", "p < 0.001",
        "p < 0.001"]


def test_verdict_text_when_the_interval_excludes_zero():
    # classical right on 12 images lenet5 gets wrong, lenet5 on 1: classical ahead by 11/400 = 2.75 points
    deep, classical = pair(only_a=1, only_b=12)
    comparison = SETTINGS.compare(deep, classical)
    assert comparison.ci_high < 0 and comparison.significant
    summary = summary_of(comparison)
    v = summary["verdict"]
    assert (v["only_deep"], v["only_classical"], v["n_test"], v["significant"]) == (1, 12, N, True)
    assert v["winner"] == summary["winner"] == "classical" and v["difference"] == pytest.approx(-11 / N)
    assert v["p_value"] == pytest.approx(binomtest(1, 13).pvalue, rel=1e-5)
    low, high = f"{-100 * v['ci_high']:.1f}", f"{-100 * v['ci_low']:.1f}"
    assert verdict.verdict_line(summary) == (
        f"classical (hog-logreg) beats deep (lenet5) by 2.8 points, 95 % CI [{low}, {high}], McNemar p = 0.003 "
        f"(12 vs 1 images), with 21,178 vs 61,706 parameters and 0.1 s vs 5.7 s fit (best of each approach chosen "
        f"on validation accuracy, compared on 400 test images); metric: accuracy (evaluation.metric)")


def test_verdict_text_when_the_interval_contains_zero():
    deep, classical = pair(only_a=5, only_b=3)
    comparison = SETTINGS.compare(deep, classical)
    assert comparison.ci_low < 0 < comparison.ci_high and not comparison.significant
    summary = summary_of(comparison)
    v = summary["verdict"]
    assert v["winner"] == summary["winner"] == "no significant difference" and v["significant"] is False
    assert v["images_needed"] == comparison.images_needed > N
    line = verdict.verdict_line(summary)
    assert re.fullmatch(
        r"no significant difference at this test-set size: deep \(lenet5\) ahead of classical \(hog-logreg\) by "
        r"0\.5 points, 95 % CI \[-\d\.\d, \d\.\d\], McNemar p = 0\.73 \(5 vs 3 images\), with 61,706 vs 21,178 "
        r"parameters and 5\.7 s vs 0\.1 s fit \(best of each approach chosen on validation accuracy, compared on "
        r"400 test images\); about [\d,]+ test images would be needed to detect a 0\.5-point difference; "
        r"metric: accuracy \(evaluation\.metric\)", line), line
    assert f"about {comparison.images_needed:,} test images" in line


@pytest.mark.parametrize("ci_low, ci_high, significant", [
    (0.0001, 0.02, True), (0.0, 0.02, False), (-0.0001, 0.02, False), (-0.02, -0.0001, True), (-0.02, 0.0, False)])
def test_the_text_switches_exactly_at_zero(ci_low, ci_high, significant):
    comparison = PairedComparison(n=N, accuracy_a=0.98, accuracy_b=0.97, difference=0.01, ci_low=ci_low,
                                  ci_high=ci_high, only_a=9, only_b=1, p_value=0.021, images_needed=2_000)
    summary = summary_of(comparison)
    line = verdict.verdict_line(summary)
    assert summary["verdict"]["significant"] is significant
    assert line.startswith("no significant difference at this test-set size: ") is not significant
    assert ("about 2,000 test images would be needed to detect a 1.0-point difference" in line) is not significant
    assert (" beats " in line) is significant and "McNemar p = 0.021 (9 vs 1 images)" in line


def test_an_interval_above_zero_with_mcnemar_not_rejecting_is_no_significant_difference():
    comparison = PairedComparison(n=N, accuracy_a=0.98, accuracy_b=0.965, difference=0.015, ci_low=0.003,
                                  ci_high=0.033, only_a=7, only_b=1, p_value=0.0703125, images_needed=900)
    summary = summary_of(comparison)
    line = verdict.verdict_line(summary)
    assert summary["verdict"]["significant"] is False and summary["verdict"]["winner"] == "no significant difference"
    assert line.startswith("no significant difference at this test-set size: ")
    assert "McNemar p = 0.070 (7 vs 1 images) (the interval excludes 0, but McNemar's exact test" in line


def test_a_tie_and_a_single_approach():
    deep, classical = pair(only_a=2, only_b=2)
    summary = summary_of(SETTINGS.compare(deep, classical))
    assert summary["verdict"]["images_needed"] is None
    assert verdict.verdict_line(summary).startswith(
        "no significant difference at this test-set size: deep (lenet5) and classical (hog-logreg) tie, 95 % CI [")
    assert "would be needed" not in verdict.verdict_line(summary)
    alone = leaderboard.build_summary([{"approach": "deep", "model": "lenet5", "test_accuracy": 0.9,
                                        "val_accuracy": 0.8, "param_count": 1, "fit_seconds": 1.0,
                                        "dataset": "d", "split_sha256": "s"}])
    assert verdict.verdict_line(alone) == ("only deep models to compare: best lenet5 (chosen on validation "
                                           "accuracy), test accuracy 90.00 %; metric: accuracy (evaluation.metric)")
    del alone["metric"]  # a summary.json written before the metric was named reads as it did
    assert verdict.verdict_line(alone) == ("only deep models to compare: best lenet5 (chosen on validation "
                                           "accuracy), test accuracy 90.00 %")


def test_pair_line_names_the_better_model_first():
    a = {"model": "hog-logreg", "param_count": 21_178, "fit_seconds": 0.1496}
    b = {"model": "lenet5", "param_count": 61_706, "fit_seconds": 5.677}
    left, right = pair(only_a=1, only_b=15)
    comparison = SETTINGS.compare(left, right)
    line = verdict.pair_line(a, b, comparison)
    assert line.startswith("lenet5 beats hog-logreg by 3.5 points, 95 % CI [")
    assert line.endswith("McNemar p < 0.001 (15 vs 1 images), with 61,706 vs 21,178 parameters and 5.7 s vs "
                         "0.1 s fit (compared on 400 test images)")


def _row(model: str, approach: str, correct: np.ndarray, **extra) -> dict:
    return {"approach": approach, "model": model, "test_accuracy": round(float(correct.mean()), 6), **extra}


def test_statistics_near_top_marks_and_pairwise_pvalues(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    y_true = np.arange(N) % 4
    image = np.arange(N)
    top = image < 390
    close = (image < 386) | (image == 390) | (image == 391)  # 4 vs 2 discordant with top
    far = image < 370  # top alone is right on 20 images
    models = {"lenet5": top, "hog-logreg": close, "raw-knn": far}
    for model, correct in models.items():
        write_model_predictions(model, y_true, np.where(correct, y_true, (y_true + 1) % 4), 4, parts=("test",))
    rows = leaderboard.rank_rows([
        _row("lenet5", "deep", top, macro_f1=0.9, param_count=1),
        _row("hog-logreg", "classical", close, macro_f1=0.9, param_count=1, test_accuracy_ci_low=0.1,
             test_accuracy_ci_high=0.2, macro_f1_ci_low=0.3, macro_f1_ci_high=0.4),  # recorded: kept
        _row("raw-knn", "classical", far, macro_f1=0.8, param_count=1)])
    images = read_results.read_test_images(rows)
    assert images.n == N and images.correct("raw-knn").tolist() == far.tolist()
    out = statistics.with_statistics(rows, images, SETTINGS)
    marks = {r["model"]: (r["near_top"], r["p_value_vs_top"]) for r in out}
    assert marks["lenet5"] == ("yes", None)
    assert marks["hog-logreg"] == ("yes", pytest.approx(binomtest(4, 6).pvalue, rel=1e-5))
    assert marks["raw-knn"] == ("", pytest.approx(binomtest(20, 20).pvalue, rel=1e-5))
    by_model = {r["model"]: r for r in out}
    assert (by_model["hog-logreg"]["test_accuracy_ci_low"], by_model["hog-logreg"]["macro_f1_ci_high"]) == (0.1, 0.4)
    knn = by_model["raw-knn"]
    assert knn["n_test"] == N and knn["test_accuracy_ci_low"] < knn["test_accuracy"] < knn["test_accuracy_ci_high"]
    assert knn["macro_f1_ci_low"] < knn["macro_f1_ci_high"]

    names = [r["model"] for r in out]
    assert names == ["lenet5", "hog-logreg", "raw-knn"]
    expected = np.array([[np.nan, binomtest(4, 6).pvalue, binomtest(20, 20).pvalue],
                         [binomtest(4, 6).pvalue, np.nan, binomtest(18, 18).pvalue],
                         [binomtest(20, 20).pvalue, binomtest(18, 18).pvalue, np.nan]])
    np.testing.assert_allclose(statistics.pairwise_pvalues(names, images), expected, rtol=1e-9)


# --- repeats: the mean over the seeds as context of the per-image test -----------------------------

def seeded_summary(comparison: PairedComparison, classical: tuple | None, deep: tuple | None) -> dict:
    """summary_of(comparison) with (repeats, test_accuracy_mean, test_accuracy_sd) on each best model
    (None: an older metrics file without them)."""
    summary = summary_of(comparison)
    for key, seeds in (("best_classical", classical), ("best_deep", deep)):
        summary[key].update(zip(("repeats", "test_accuracy_mean", "test_accuracy_sd"), seeds or (None,) * 3))
    return summary


MOCK = PairedComparison(n=N, accuracy_a=0.975, accuracy_b=0.99, difference=-0.015, ci_low=-0.03, ci_high=-0.003,
                        only_a=1, only_b=7, p_value=0.0703125, images_needed=900)


def test_verdict_appends_the_means_over_the_seeds():
    plain = verdict.verdict_line(summary_of(MOCK))
    line = verdict.verdict_line(seeded_summary(MOCK, (3, 0.991, 0.002), (3, 0.97512, 0.0041)))
    assert line == plain + ("; over 3 seeds: classical (hog-logreg) 99.1 ± 0.2 %, deep (lenet5) 97.5 ± 0.4 % "
                            "(mean ± sd of test accuracy)")
    assert line.startswith("no significant difference at this test-set size: classical (hog-logreg) ahead of deep")
    # different seed counts (a deterministic classical model is trained once): each names its own
    mixed = verdict.verdict_line(seeded_summary(MOCK, (1, 0.99, 0.0), (5, 0.97512, 0.0041)))
    assert mixed == plain + ("; classical (hog-logreg) 99.0 % over 1 seed, deep (lenet5) 97.5 ± 0.4 % over 5 seeds "
                             "(mean ± sd of test accuracy)")
    # a model without recorded means is left out; an sd below 0.05 points keeps its digits
    older = verdict.verdict_line(seeded_summary(MOCK, None, (2, 0.97512, 0.0004)))
    assert older == plain + "; over 2 seeds: deep (lenet5) 97.51 ± 0.04 % (mean ± sd of test accuracy)"


def test_one_seed_each_leaves_the_verdict_as_it_was():
    plain = verdict.verdict_line(summary_of(MOCK))
    assert verdict.verdict_line(seeded_summary(MOCK, (1, 0.99, 0.0), (1, 0.975, 0.0))) == plain
    assert verdict.verdict_line(seeded_summary(MOCK, None, None)) == plain
    assert "seed" not in plain

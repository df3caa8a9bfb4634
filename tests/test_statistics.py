"""models.statistics: Wilson and bootstrap intervals, McNemar's exact test, paired comparison,
test-set size — checked against hand computations and seeded coverage simulations."""
from __future__ import annotations

import dataclasses
import math
import tracemalloc
from functools import partial

import numpy as np
import pytest
from scipy.stats import binom

from models.errors import InputError, ParameterError
from models.evaluate import classification_metrics
from models.statistics import (
    PairedComparison,
    bootstrap_interval,
    compare_paired,
    images_needed,
    macro_f1,
    mcnemar_exact,
    paired_bootstrap_difference,
    repeat_seeds,
    wilson_interval,
)

Z95 = 1.959963984540054  # norm.ppf(0.975)


def paired(only_a: int, only_b: int, both: int = 0, neither: int = 0, seed: int = 0):
    """Per-image correctness of two models with the given concordant/discordant counts, shuffled."""
    a = np.array([True] * only_a + [False] * only_b + [True] * both + [False] * neither)
    b = np.array([False] * only_a + [True] * only_b + [True] * both + [False] * neither)
    order = np.random.default_rng(seed).permutation(len(a))
    return a[order], b[order]


def labels(n: int, n_classes: int, error_rate: float, seed: int):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n)
    wrong = rng.random(n) < error_rate
    y_pred = np.where(wrong, (y_true + rng.integers(1, n_classes, n)) % n_classes, y_true)
    return y_true, y_pred


# ---------------------------------------------------------------------------- McNemar / paired

def test_identical_models_are_not_different():
    rng = np.random.default_rng(1)
    a = rng.random(500) < 0.9
    assert mcnemar_exact(a, a) == (0, 0, 1.0)
    assert paired_bootstrap_difference(a, a, resamples=200, seed=0) == (0.0, 0.0, 0.0)
    result = compare_paired(a, a.copy(), resamples=200, seed=0)
    assert (result.p_value, result.difference, result.ci_low, result.ci_high) == (1.0, 0.0, 0.0, 0.0)
    assert result.accuracy_a == result.accuracy_b == np.count_nonzero(a) / 500
    assert result.images_needed is None
    assert not result.significant


def test_model_right_on_30_more_of_1000_images_is_significant():
    a, b = paired(only_a=30, only_b=0, both=900, neither=70)
    result = compare_paired(a, b, resamples=2000, seed=0)
    assert (result.n, result.only_a, result.only_b) == (1000, 30, 0)
    assert result.accuracy_a == 0.93 and result.accuracy_b == 0.90
    assert result.difference == pytest.approx(0.03)
    assert result.p_value == pytest.approx(2 * 0.5 ** 30, rel=1e-9)  # both tails of Binomial(30, 1/2)
    assert result.p_value < 0.01
    assert 0 < result.ci_low < 0.03 < result.ci_high
    assert result.significant


def test_40_versus_10_discordant_images_is_significant():
    a, b = paired(only_a=40, only_b=10, both=880, neither=70)
    only_a, only_b, p = mcnemar_exact(a, b)
    hand = 2 * sum(math.comb(50, k) for k in range(11)) / 2 ** 50
    assert (only_a, only_b) == (40, 10)
    assert p == pytest.approx(hand, rel=1e-9) and p < 0.01
    difference, low, high = paired_bootstrap_difference(a, b, resamples=2000, seed=0)
    assert difference == pytest.approx(0.03)
    assert 0 < low < difference < high
    # the sign follows the order of the models
    assert mcnemar_exact(b, a) == (10, 40, p)
    difference_ba, low_ba, high_ba = paired_bootstrap_difference(b, a, resamples=2000, seed=0)
    assert difference_ba == pytest.approx(-0.03) and low_ba < high_ba < 0


def test_mcnemar_small_case_by_hand():
    a, b = paired(only_a=8, only_b=1, both=5, neither=2)
    # 2 * P(X <= 1), X ~ Binomial(9, 1/2) = 2 * (1 + 9) / 512
    assert mcnemar_exact(a, b) == (8, 1, pytest.approx(20 / 512, abs=1e-12))
    assert round(mcnemar_exact(a, b)[2], 4) == 0.0391
    assert mcnemar_exact(*paired(5, 5, both=3)) == (5, 5, 1.0)
    assert mcnemar_exact(*paired(1, 0)) == (1, 0, 1.0)
    # 0/1 numbers are accepted as well as booleans
    assert mcnemar_exact(a.astype(int), b.astype(float)) == mcnemar_exact(a, b)


def test_paired_bootstrap_equals_generic_bootstrap_of_the_difference():
    a, b = paired(only_a=25, only_b=12, both=300, neither=40, seed=3)
    difference, low, high = paired_bootstrap_difference(a, b, resamples=700, seed=5, confidence=0.9)
    generic = bootstrap_interval(a, b, lambda x, y: x.mean() - y.mean(), resamples=700, seed=5,
                                 confidence=0.9)
    assert difference == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert (low, high) == pytest.approx(generic, abs=1e-12)


def test_paired_bootstrap_coverage_of_a_known_difference():
    # Images: 4 % only a right, 1 % only b right (true difference 0.03), the rest 90 % both.
    # Over 3,000 simulations the coverage of this percentile interval came out at 0.942.
    # 1,000 simulations: binomial sd of the coverage estimate sqrt(0.95 * 0.05 / 1000) = 0.0069,
    # so [0.92, 0.975] lies >= 3 sd either side of 0.942-0.95 and of the nominal 0.95; an
    # unpaired resampling (far too wide, coverage ~1) or a too narrow interval fails it.
    rng = np.random.default_rng(20240611)
    n, sims, hits = 360, 1000, 0
    for sim in range(sims):
        u = rng.random(n)
        a = (u < 0.04) | ((u >= 0.05) & (u < 0.95))
        b = (u >= 0.04) & (u < 0.95)
        _, low, high = paired_bootstrap_difference(a, b, resamples=500, seed=sim)
        hits += low <= 0.03 <= high
    assert 0.92 <= hits / sims <= 0.975


def test_significant_switches_exactly_when_the_interval_excludes_zero_and_mcnemar_rejects():
    base = PairedComparison(n=1000, accuracy_a=0.9, accuracy_b=0.9, difference=0.0, ci_low=-0.01,
                            ci_high=0.01, only_a=10, only_b=10, p_value=0.001, images_needed=None)
    tiny = np.nextafter(0.0, 1.0)
    cases = [((-0.01, 0.01), False), ((0.0, 0.02), False), ((tiny, 0.02), True), ((0.001, 0.02), True),
             ((-0.02, 0.0), False), ((-0.02, -tiny), True), ((-0.02, -0.001), True), ((0.0, 0.0), False)]
    for (low, high), expected in cases:
        assert dataclasses.replace(base, ci_low=low, ci_high=high).significant is expected, (low, high)
    # an interval above 0 with p at or above alpha is not significant (too few discordant images)
    for p_value, expected in ((0.049, True), (0.05, False), (0.07, False)):
        assert dataclasses.replace(base, ci_low=0.001, ci_high=0.02, p_value=p_value).significant is expected
    # from data: 7 vs 1 discordant images of 360 -> the percentile interval excludes 0, p = 0.070
    seven = compare_paired(*paired(7, 1, both=340, neither=12), resamples=2000, seed=42)
    assert seven.ci_low > 0 and seven.p_value == pytest.approx(0.0703125) and not seven.significant
    # from data: one discordant image in 1,000 leaves ~37 % of resamples without it, so the
    # interval touches 0; 30 one-way discordances never vanish from a resample together.
    one = compare_paired(*paired(1, 0, both=900, neither=99), resamples=1000, seed=0)
    assert one.ci_low == 0.0 and one.ci_high > 0 and not one.significant
    thirty = compare_paired(*paired(30, 0, both=900, neither=70), resamples=1000, seed=0)
    assert thirty.ci_low > 0 and thirty.significant
    with pytest.raises(dataclasses.FrozenInstanceError):
        thirty.ci_low = 0.0


def test_compare_paired_fields():
    a, b = paired(only_a=12, only_b=30, both=150, neither=8, seed=2)
    result = compare_paired(a, b, resamples=500, seed=1, confidence=0.9, alpha=0.1, power=0.9)
    assert (result.n, result.only_a, result.only_b) == (200, 12, 30)
    assert result.accuracy_a == 162 / 200 and result.accuracy_b == 180 / 200
    assert result.difference == pytest.approx(-18 / 200)
    assert (result.difference, result.ci_low, result.ci_high) == paired_bootstrap_difference(
        a, b, resamples=500, seed=1, confidence=0.9)
    assert result.p_value == mcnemar_exact(a, b)[2]
    assert result.images_needed == images_needed(-18 / 200, 42 / 200, alpha=0.1, power=0.9)
    assert result.significant and result.ci_high < 0
    assert type(result.n) is int and type(result.only_a) is int and type(result.p_value) is float


# ---------------------------------------------------------------------------- Wilson

def test_wilson_known_value():
    low, high = wilson_interval(97, 100)
    assert (low, high) == pytest.approx((0.9154, 0.9897), abs=1e-4)
    # closed form by hand: centre (p + z²/2n)/(1 + z²/n), half z/(1 + z²/n) sqrt(p(1-p)/n + z²/4n²)
    p, n, z2 = 0.97, 100, Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_wilson_extremes_stay_in_range_and_are_not_degenerate():
    n, z2 = 40, Z95 ** 2
    low, high = wilson_interval(0, n)
    assert low == 0.0 and high == pytest.approx(z2 / (n + z2), abs=1e-12)  # ≈ 0.0876, not 0
    low, high = wilson_interval(n, n)
    assert high == 1.0 and low == pytest.approx(n / (n + z2), abs=1e-12)  # ≈ 0.9124, not 1
    assert wilson_interval(0, 1) == pytest.approx((0.0, z2 / (1 + z2)), abs=1e-12)


def test_wilson_width_grows_with_confidence_and_shrinks_with_n():
    widths = [h - l for l, h in (wilson_interval(90, 100, c) for c in (0.8, 0.95, 0.99))]
    assert widths[0] < widths[1] < widths[2]
    assert wilson_interval(900, 1000)[1] - wilson_interval(900, 1000)[0] < widths[1] / 3
    assert wilson_interval(np.int64(90), np.int64(100)) == wilson_interval(90, 100)


def test_wilson_coverage_near_nominal():
    # 2,000 seeded test sets of 370 images at true accuracy 0.97. Because the count is discrete,
    # the exact coverage at this n is not 0.95 but 0.9545 (computed below from the binomial pmf;
    # Wilson oscillates around the nominal level, e.g. 0.943 at n = 350). The simulated coverage
    # has binomial sd sqrt(0.9545 * 0.0455 / 2000) = 0.0047, so [0.93, 0.97] lies > 3 sd from the
    # expected value either side; a Wald interval (exact coverage 0.919 here) fails the bound.
    n, p, sims = 370, 0.97, 2000
    intervals = [wilson_interval(k, n) for k in range(n + 1)]
    exact = sum(binom.pmf(k, n, p) for k, (low, high) in enumerate(intervals) if low <= p <= high)
    assert exact == pytest.approx(0.9545, abs=5e-4)
    counts = np.random.default_rng(7).binomial(n, p, size=sims)
    covered = sum(low <= p <= high for low, high in (wilson_interval(int(k), n) for k in counts))
    assert 0.93 <= covered / sims <= 0.97


# ---------------------------------------------------------------------------- macro-F1 + bootstrap

def test_macro_f1_matches_classification_metrics_with_absent_classes():
    y_true, y_pred = labels(300, 4, 0.3, seed=0)  # classes 4 and 5 never occur
    names = [str(i) for i in range(6)]
    assert macro_f1(y_true, y_pred, 6) == pytest.approx(classification_metrics(y_true, y_pred, names)["macro_f1"],
                                                        abs=1e-6)
    # by hand: class 0 right twice, predicted once more wrongly, class 1 never predicted
    assert macro_f1([0, 0, 1, 1], [0, 0, 0, 2], 3) == pytest.approx((2 * 2 / (3 + 2) + 0 + 0) / 3)
    assert macro_f1([1, 1], [1, 1], 2) == 0.5


def test_bootstrap_macro_f1_interval():
    statistic = partial(macro_f1, n_classes=5)
    widths = []
    for n in (200, 2000):
        y_true, y_pred = labels(n, 5, 0.2, seed=n)
        observed = statistic(y_true, y_pred)
        low, high = bootstrap_interval(y_true, y_pred, statistic, resamples=1000, seed=0)
        assert low < observed < high
        widths.append(high - low)
    # width ~ 1/sqrt(n): ten times the images, about a third of the width
    assert widths[1] < widths[0] / 2


def test_bootstrap_is_deterministic_for_a_seed():
    y_true, y_pred = labels(300, 3, 0.25, seed=4)
    statistic = partial(macro_f1, n_classes=3)
    first = bootstrap_interval(y_true, y_pred, statistic, resamples=300, seed=11)
    assert bootstrap_interval(y_true, y_pred, statistic, resamples=300, seed=11) == first
    assert bootstrap_interval(y_true, y_pred, statistic, resamples=300, seed=12) != first
    a, b = paired(20, 10, both=250, neither=20)
    first = paired_bootstrap_difference(a, b, resamples=300, seed=11)
    assert paired_bootstrap_difference(a, b, resamples=300, seed=11) == first
    assert paired_bootstrap_difference(a, b, resamples=300, seed=12) != first
    narrower = paired_bootstrap_difference(a, b, resamples=300, seed=11, confidence=0.5)
    assert first[1] < narrower[1] <= narrower[2] < first[2]


def test_bootstraps_draw_indices_in_bounded_chunks():
    # 2,000 resamples of 10,000 images as one int64 index matrix would be 160 MB
    rng = np.random.default_rng(0)
    a, b = rng.random(10_000) < 0.9, rng.random(10_000) < 0.88
    tracemalloc.start()
    try:
        paired_bootstrap_difference(a, b, resamples=2_000, seed=0)
        bootstrap_interval(a, b, lambda x, y: float(np.mean(x == y)), resamples=2_000, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, f"peak {peak / 1e6:.0f} MB"


# ---------------------------------------------------------------------------- images_needed

def test_images_needed_by_hand():
    # Connor's n = (z_a sqrt(psi) + z_b sqrt(psi - d^2))^2 / d^2 worked by hand with the normal table's
    # z_0.975 = 1.959964, z_0.8 = 0.841621 (alpha 0.05, power 0.8), z_0.995 = 2.575829, z_0.9 = 1.281552:
    # d = 0.019, psi = 0.025: (1.959964 * 0.158114 + 0.841621 * 0.156968)^2 / 0.000361 = 541.19 -> 542
    assert images_needed(0.019, 0.025) == 542
    assert images_needed(-0.019, 0.025) == 542  # the sign of the difference does not matter
    # (2.575829 * 0.158114 + 1.281552 * 0.156968)^2 / 0.000361 = 1025.47 -> 1026
    assert images_needed(0.019, 0.025, alpha=0.01, power=0.9) == 1026


def test_images_needed_decreases_as_the_difference_grows():
    needed = [images_needed(d, 0.06) for d in (0.005, 0.01, 0.02, 0.04, 0.06)]
    assert all(x > y for x, y in zip(needed, needed[1:])), needed
    assert images_needed(0.0, 0.06) is None
    assert images_needed(0.0, 0.0) is None


def test_images_needed_degenerate_discordant_rate():
    # all discordant images favour a: psi = |d| = 0.05, by hand
    # (1.959964 * sqrt(0.05) + 0.841621 * sqrt(0.05 - 0.0025))^2 / 0.0025 = 154.60 -> 155
    assert images_needed(0.05, 0.05) == 155
    assert images_needed(0.05, 0.05 ** 2) == 155  # psi <= d², formula undefined: taken as |d|
    assert images_needed(0.05, 0.0) == 155
    assert images_needed(1.0, 1.0) == 4  # 1.959964^2 = 3.84 -> 4


# ---------------------------------------------------------------------------- validation

GOOD = np.array([True, False, True])


@pytest.mark.parametrize("call, error", [
    (lambda: mcnemar_exact(GOOD, GOOD[:2]), InputError),
    (lambda: mcnemar_exact([], []), InputError),
    (lambda: mcnemar_exact(GOOD, np.array([0, 2, 1])), InputError),
    (lambda: mcnemar_exact(GOOD, np.array(["x", "y", "z"])), InputError),
    (lambda: mcnemar_exact(GOOD.reshape(3, 1), GOOD.reshape(3, 1)), InputError),
    (lambda: paired_bootstrap_difference(GOOD, GOOD[:1], resamples=10, seed=0), InputError),
    (lambda: paired_bootstrap_difference(GOOD, GOOD, resamples=0, seed=0), ParameterError),
    (lambda: paired_bootstrap_difference(GOOD, GOOD, resamples=2.5, seed=0), ParameterError),
    (lambda: paired_bootstrap_difference(GOOD, GOOD, resamples=10, seed=-1), ParameterError),
    (lambda: paired_bootstrap_difference(GOOD, GOOD, resamples=10, seed=0, confidence=1.0), ParameterError),
    (lambda: bootstrap_interval([1, 2], [1], np.mean, resamples=10, seed=0), InputError),
    (lambda: bootstrap_interval([], [], np.mean, resamples=10, seed=0), InputError),
    (lambda: bootstrap_interval([1], [1], np.mean, resamples=10, seed=0, confidence=0.0), ParameterError),
    (lambda: bootstrap_interval([1], [1], np.mean, resamples=10, seed=0, confidence=float("nan")),
     ParameterError),
    (lambda: wilson_interval(5, 4), InputError),
    (lambda: wilson_interval(-1, 4), InputError),
    (lambda: wilson_interval(0, 0), InputError),
    (lambda: wilson_interval(2.5, 4), InputError),
    (lambda: wilson_interval(2, 4, confidence=95), ParameterError),
    (lambda: macro_f1([0, 1], [0, 3], 3), InputError),
    (lambda: macro_f1([0, 1], [0], 3), InputError),
    (lambda: macro_f1([0, 1], [0, 1], 0), ParameterError),
    (lambda: images_needed(0.01, 0.05, alpha=0.0), ParameterError),
    (lambda: images_needed(0.01, 0.05, power=1.0), ParameterError),
    (lambda: images_needed(1.5, 0.05), ParameterError),
    (lambda: images_needed(0.01, -0.1), ParameterError),
    (lambda: compare_paired(GOOD, GOOD, resamples=10, seed=0, alpha=2), ParameterError),
])
def test_bad_input_raises_one_line_errors(call, error):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message


# ---------------------------------------------------------------------------- repeat_seeds

def test_repeat_seeds_start_with_the_seed_and_spawn_the_rest():
    assert repeat_seeds(42, 1) == (42,)
    seeds = repeat_seeds(42, 5)
    assert seeds[0] == 42 and len(seeds) == 5 and len(set(seeds)) == 5
    assert all(type(s) is int and 0 <= s < 2**32 for s in seeds)
    children = np.random.SeedSequence(42).spawn(4)
    assert seeds[1:] == tuple(int(c.generate_state(1)[0]) for c in children)
    assert repeat_seeds(42, 5) == seeds and repeat_seeds(42, 3) == seeds[:3]  # deterministic, nested
    assert repeat_seeds(7, 3)[1:] != seeds[1:3]  # derived from the seed
    assert repeat_seeds(np.int64(2**32 - 1), 2)[0] == 2**32 - 1


@pytest.mark.parametrize(("seed", "repeats", "match"), [
    (-1, 2, "seed must be an integer >= 0"), (1.5, 2, "seed must be"),
    (0, 0, "repeats must be an integer >= 1"), (0, True, "repeats must be"), (0, 2.0, "repeats must be"),
])
def test_repeat_seeds_rejects_bad_arguments(seed, repeats, match):
    with pytest.raises(ParameterError, match=match):
        repeat_seeds(seed, repeats)

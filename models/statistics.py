"""Uncertainty of test-set scores and paired comparison of two models on the same test images.

Pure numpy/scipy functions: nothing here reads or writes files. Each model is trained once
on one split, so the comparison follows Dietterich's recommendation for that setting:
McNemar's exact test on the images where exactly one of the two models is right, with a
paired bootstrap interval for the difference of accuracies. On imbalanced classes the
difference of balanced accuracies (mean per-class recall) has the same paired bootstrap
interval, and a paired randomisation test, McNemar's test with the images weighed by their
class, takes McNemar's place (:func:`compare_paired_balanced`).

References:
    - Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
      inference. Journal of the American Statistical Association 22:209-212.
      (:func:`wilson_interval`, score interval for one accuracy.)
    - Efron, B. & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall,
      ch. 13, the percentile interval. (:func:`bootstrap_interval`,
      :func:`paired_bootstrap_difference`: test images resampled with replacement.)
    - McNemar, Q. (1947). Note on the sampling error of the difference between correlated
      proportions or percentages. Psychometrika 12:153-157. (:func:`mcnemar_exact`, here
      in its exact binomial form.)
    - Dietterich, T. G. (1998). Approximate statistical tests for comparing supervised
      classification learning algorithms. Neural Computation 10(7):1895-1923.
    - Fisher, R. A. (1935). The Design of Experiments. Oliver & Boyd, ch. 3: the randomisation
      test of paired differences (:func:`sign_flip_p`).
    - Connor, R. J. (1987). Sample size for testing differences in proportions for the
      paired-sample design. Biometrics 43:207-211. (:func:`images_needed`.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from models.errors import InputError, ParameterError

# Bootstrap index matrices are drawn CHUNK_ELEMENTS indices at a time (16 MiB of int64),
# so 10,000 resamples of 10,000 images never hold the whole 800 MB matrix.
CHUNK_ELEMENTS = 1 << 21


# ---------------------------------------------------------------------------- validation

def _confidence(confidence: float, name: str = "confidence") -> float:
    try:
        value = float(confidence)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number in (0, 1); got {confidence!r}") from None
    if not 0.0 < value < 1.0:  # also rejects NaN
        raise ParameterError(f"{name} must be in (0, 1); got {confidence!r}")
    return value


def _resamples(resamples: int) -> int:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ParameterError(f"resamples must be an integer >= 1; got {resamples!r}")
    return int(resamples)


def _seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be an integer >= 0; got {seed!r}")
    return int(seed)


def _paired(a, b, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long, non-empty arrays (resampled along their first axis)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise InputError(f"{what} must be arrays over the test images; got a scalar")
    if len(a) == 0 or len(a) != len(b):
        raise InputError(f"need equally long, non-empty {what}; got {len(a)} and {len(b)}")
    return a, b


def _correct(correct_a, correct_b) -> tuple[np.ndarray, np.ndarray]:
    """Boolean 1-d arrays (bool, or 0/1 numbers) over the same test images."""
    a, b = _paired(correct_a, correct_b, "correct_a/correct_b arrays")
    out = []
    for name, x in (("correct_a", a), ("correct_b", b)):
        if x.ndim != 1:
            raise InputError(f"{name} must be 1-d (one value per test image); got shape {x.shape}")
        if x.dtype != bool:
            if not (np.issubdtype(x.dtype, np.number) and np.isin(x, (0, 1)).all()):
                raise InputError(f"{name} must be boolean (or 0/1) per test image; got values "
                                 f"{np.unique(x)[:10].tolist()}")
            x = x.astype(bool)
        out.append(x)
    return out[0], out[1]


def _labels(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Equally long, non-empty 1-d integer label arrays with values in ``range(n_classes)``."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ParameterError(f"n_classes must be an integer >= 1; got {n_classes!r}")
    y_true, y_pred = _paired(np.ravel(y_true), np.ravel(y_pred), "label arrays")
    for name, y in (("true", y_true), ("predicted", y_pred)):
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
            raise InputError(f"{name} labels must be integers in [0, {n_classes - 1}]; "
                             f"got {np.unique(y)[:10].tolist()}")
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def _index_chunks(n: int, resamples: int, seed: int):
    """Yield (start, indices) with indices an (rows, n) int matrix of image positions drawn
    with replacement, CHUNK_ELEMENTS at a time; the concatenation depends only on the seed,
    ``n`` and ``resamples``."""
    rng = np.random.default_rng(seed)
    rows = max(1, CHUNK_ELEMENTS // n)
    for start in range(0, resamples, rows):
        yield start, rng.integers(0, n, size=(min(rows, resamples - start), n))


# ---------------------------------------------------------------------------- one model

def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for an accuracy of ``correct`` out of ``n`` test images.

    Closed form: centre ``(p + z²/2n) / (1 + z²/n)``, half-width
    ``z / (1 + z²/n) · sqrt(p(1-p)/n + z²/4n²)`` with ``p = correct/n`` and ``z`` the
    ``(1 + confidence)/2`` normal quantile. Unlike the Wald interval it stays inside
    [0, 1] and does not collapse to a point at 0 or n correct.

    Raises:
        InputError: ``n < 1`` or ``correct`` not an integer in [0, n].
        ParameterError: ``confidence`` not in (0, 1).
    """
    from scipy.stats import norm

    confidence = _confidence(confidence)
    for name, value in (("n", n), ("correct", correct)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"{name} must be an integer count of test images; got {value!r}")
    if n < 1 or not 0 <= correct <= n:
        raise InputError(f"need 0 <= correct <= n and n >= 1; got correct={correct}, n={n}")
    z = float(norm.ppf(0.5 + confidence / 2.0))
    n, p = float(n), correct / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    """Unweighted mean F1 over all ``n_classes`` classes; a class with no true and no
    predicted image (or no true positive) scores 0, as in
    :func:`models.evaluate.classification_metrics` (scikit-learn, ``zero_division=0``).

    Raises:
        ParameterError: ``n_classes < 1``.
        InputError: label arrays of different or zero length, or labels out of range.
    """
    y_true, y_pred = _labels(y_true, y_pred, n_classes)
    k = int(n_classes)
    confusion = np.bincount(y_true.astype(np.int64) * k + y_pred, minlength=k * k).reshape(k, k)
    true_positive = np.diag(confusion).astype(float)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + actual)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2.0 * true_positive, denominator, out=np.zeros(k), where=denominator > 0)
    return float(f1.mean())


def balanced_accuracy(y_true, y_pred, n_classes: int) -> float:
    """Mean recall over the classes present in ``y_true`` (scikit-learn's
    ``balanced_accuracy_score``: a class with no true image does not count), so each class
    weighs the same however many test images it has: predicting the majority class of a 1:20
    set scores 0.5, not 0.95.

    Raises:
        ParameterError: ``n_classes < 1``.
        InputError: label arrays of different or zero length, or labels out of range.
    """
    y_true, y_pred = _labels(y_true, y_pred, n_classes)
    support = np.bincount(y_true, minlength=n_classes)
    hits = np.bincount(y_true[y_true == y_pred], minlength=n_classes)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


def bootstrap_interval(y_true, y_pred, statistic: Callable[[np.ndarray, np.ndarray], float], *,
                       resamples: int, seed: int, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(y_true, y_pred)`` over the test images.

    Each resample draws ``len(y_true)`` image positions with replacement
    (``numpy.random.default_rng(seed)``, index matrices drawn in bounded chunks) and
    evaluates ``statistic`` on those rows of both arrays; the interval is the
    ``(1 ∓ confidence)/2`` quantiles of the resampled values. Same arguments, same interval.

    Raises:
        InputError: arrays of different or zero length.
        ParameterError: ``resamples < 1``, a negative seed or ``confidence`` not in (0, 1).
    """
    confidence, resamples, seed = _confidence(confidence), _resamples(resamples), _seed(seed)
    y_true, y_pred = _paired(y_true, y_pred, "y_true/y_pred arrays")
    values = np.empty(resamples)
    for start, indices in _index_chunks(len(y_true), resamples, seed):
        for i, rows in enumerate(indices, start):
            values[i] = statistic(y_true[rows], y_pred[rows])
    return _percentile_interval(values, confidence)


def balanced_accuracy_interval(y_true, y_pred, n_classes: int, *, resamples: int, seed: int,
                               confidence: float = 0.95) -> tuple[float, float]:
    """:func:`bootstrap_interval` of :func:`balanced_accuracy` (the same image positions for the
    same seed), vectorised over the resamples.

    Raises:
        InputError: label arrays of different or zero length, or labels out of range.
        ParameterError: as :func:`bootstrap_interval`, and ``n_classes < 1``.
    """
    confidence, resamples, seed = _confidence(confidence), _resamples(resamples), _seed(seed)
    y_true, y_pred = _labels(y_true, y_pred, n_classes)
    hits = (y_true == y_pred).astype(np.float64)
    values = np.empty(resamples)
    for start, indices in _index_chunks(len(y_true), resamples, seed):
        values[start:start + len(indices)] = _balanced_differences(y_true, hits, indices, int(n_classes))
    return _percentile_interval(values, confidence)


# ---------------------------------------------------------------------------- two models

def mcnemar_exact(correct_a, correct_b) -> tuple[int, int, float]:
    """McNemar's exact test on paired per-image correctness.

    Returns ``(only_a, only_b, p_value)``: the images model a gets right and b wrong, the
    reverse, and the two-sided exact binomial p-value of ``only_a`` out of
    ``only_a + only_b`` discordant images under p = 1/2 (1.0 when there are none).

    Raises:
        InputError: arrays of different or zero length, or not boolean (0/1).
    """
    from scipy.stats import binomtest

    a, b = _correct(correct_a, correct_b)
    only_a, only_b = int(np.count_nonzero(a & ~b)), int(np.count_nonzero(b & ~a))
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    p_value = binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue
    return only_a, only_b, min(1.0, float(p_value))


def paired_bootstrap_difference(correct_a, correct_b, *, resamples: int, seed: int,
                                confidence: float = 0.95) -> tuple[float, float, float]:
    """``(accuracy_a - accuracy_b, low, high)`` with a paired percentile bootstrap interval.

    Both models are resampled on the same image positions (vectorised: the per-image
    difference ``a - b`` in {-1, 0, 1} is averaged over each row of a chunked index matrix),
    so the interval reflects only the images on which they disagree; identical models give
    ``(0.0, 0.0, 0.0)``.

    Raises:
        InputError: arrays of different or zero length, or not boolean (0/1).
        ParameterError: ``resamples < 1``, a negative seed or ``confidence`` not in (0, 1).
    """
    confidence, resamples, seed = _confidence(confidence), _resamples(resamples), _seed(seed)
    a, b = _correct(correct_a, correct_b)
    per_image = a.astype(np.int8) - b.astype(np.int8)
    n = len(per_image)
    values = np.empty(resamples)
    for start, indices in _index_chunks(n, resamples, seed):
        values[start:start + len(indices)] = per_image[indices].sum(axis=1, dtype=np.int64) / n
    return float(per_image.sum(dtype=np.int64) / n), *_percentile_interval(values, confidence)


def images_needed(difference: float, discordant_rate: float, *, alpha: float = 0.05,
                  power: float = 0.8) -> int | None:
    """Approximate number of test images at which McNemar's test (two-sided level ``alpha``)
    detects an accuracy ``difference`` with probability ``power`` (Connor 1987).

    ``n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - d²))² / d²``, rounded up, with
    ``psi`` = ``discordant_rate`` (share of images exactly one model gets right) and
    ``d`` = ``difference`` (= the difference of the two discordant shares). The formula is
    a normal approximation, so treat the answer as an order of magnitude, not a guarantee.
    ``psi`` cannot be below ``|d|``; a smaller value (including the degenerate
    ``psi <= d²``, where the formula is undefined) is taken as ``|d|``, i.e. all
    discordant images going one way. Returns None when ``difference`` is 0 (no test set
    size detects no difference).

    Raises:
        ParameterError: ``difference`` not in [-1, 1], ``discordant_rate`` not in [0, 1],
            or ``alpha``/``power`` not in (0, 1).
    """
    from scipy.stats import norm

    alpha, power = _confidence(alpha, "alpha"), _confidence(power, "power")
    d, psi = float(difference), float(discordant_rate)
    if not -1.0 <= d <= 1.0:
        raise ParameterError(f"difference must be an accuracy difference in [-1, 1]; got {difference!r}")
    if not 0.0 <= psi <= 1.0:
        raise ParameterError(f"discordant_rate must be a proportion in [0, 1]; got {discordant_rate!r}")
    if d == 0.0:
        return None
    psi = max(psi, abs(d))
    z_alpha, z_power = float(norm.ppf(1.0 - alpha / 2.0)), float(norm.ppf(power))
    n = (z_alpha * math.sqrt(psi) + z_power * math.sqrt(max(0.0, psi - d * d))) ** 2 / (d * d)
    return max(1, math.ceil(n - 1e-9))  # 1e-9: an exact integer is not rounded up by float error


@dataclass(frozen=True)
class PairedComparison:
    """Two models on the same ``n`` test images (a - b throughout); see :func:`compare_paired`.
    ``accuracy_a``/``accuracy_b``, ``difference`` and its interval are of ``metric``;
    ``only_a``/``only_b`` always count the images exactly one of the two gets right."""

    n: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    ci_low: float
    ci_high: float
    only_a: int
    only_b: int
    p_value: float
    images_needed: int | None
    alpha: float = 0.05
    metric: str = "accuracy"  # or "balanced_accuracy" (:func:`compare_paired_balanced`)

    @property
    def test(self) -> str:
        """The test behind ``p_value``: ``McNemar`` (accuracy) or ``permutation`` (balanced accuracy)."""
        return "McNemar" if self.metric == "accuracy" else "permutation"

    @property
    def significant(self) -> bool:
        """True iff the interval of the difference excludes 0 AND the test rejects at ``alpha``.
        With few discordant images the percentile bootstrap interval is too narrow (7 vs 1
        images: an interval above 0 but McNemar's p = 0.07), so both must agree."""
        return bool((self.ci_low > 0.0 or self.ci_high < 0.0) and self.p_value < self.alpha)


def compare_paired(correct_a, correct_b, *, resamples: int, seed: int, confidence: float = 0.95,
                   alpha: float = 0.05, power: float = 0.8) -> PairedComparison:
    """Accuracies, their difference with a paired bootstrap interval, McNemar's exact test and
    the approximate test-set size for this difference (observed discordant rate).

    Raises:
        InputError: arrays of different or zero length, or not boolean (0/1).
        ParameterError: as :func:`paired_bootstrap_difference` and :func:`images_needed`.
    """
    alpha, power = _confidence(alpha, "alpha"), _confidence(power, "power")
    a, b = _correct(correct_a, correct_b)
    difference, low, high = paired_bootstrap_difference(a, b, resamples=resamples, seed=seed,
                                                        confidence=confidence)
    only_a, only_b, p_value = mcnemar_exact(a, b)
    n = len(a)
    return PairedComparison(
        n=n,
        accuracy_a=float(np.count_nonzero(a) / n),
        accuracy_b=float(np.count_nonzero(b) / n),
        difference=difference,
        ci_low=low,
        ci_high=high,
        only_a=only_a,
        only_b=only_b,
        p_value=p_value,
        images_needed=images_needed(difference, (only_a + only_b) / n, alpha=alpha, power=power),
        alpha=alpha,
    )


def _balanced_differences(y_true: np.ndarray, per_image: np.ndarray, indices: np.ndarray, k: int) -> np.ndarray:
    """Balanced accuracy of a minus b on each row of ``indices`` (image positions): per row,
    the mean over its present classes of (a's hits - b's hits) / the class's images."""
    rows = len(indices)
    flat = (y_true[indices] + k * np.arange(rows)[:, None]).ravel()
    support = np.bincount(flat, minlength=rows * k).reshape(rows, k)
    gained = np.bincount(flat, weights=per_image[indices].ravel(), minlength=rows * k).reshape(rows, k)
    recall = np.divide(gained, support, out=np.zeros((rows, k)), where=support > 0)
    return recall.sum(axis=1) / np.count_nonzero(support, axis=1)


def sign_flip_p(effects, *, resamples: int, seed: int) -> float:
    """Two-sided p-value of a paired randomisation test of ``sum(effects)`` = 0: each image's
    effect (a's minus b's contribution; 0 where both agree) keeps or flips its sign with
    probability 1/2, ``resamples`` times (``numpy.random.default_rng(seed)``), and
    ``p = (k + 1) / (resamples + 1)`` with ``k`` the draws whose ``|sum|`` reaches the observed one.
    With equal effects it is McNemar's exact test, by Monte Carlo; 1.0 when every effect is 0.

    Raises:
        ParameterError: ``resamples < 1`` or a negative seed.
    """
    resamples, seed = _resamples(resamples), _seed(seed)
    effects = np.asarray(effects, dtype=np.float64).ravel()
    effects = effects[effects != 0.0]
    if effects.size == 0:
        return 1.0
    observed = abs(effects.sum()) * (1 - 1e-12)  # a draw equal to the observed one counts despite rounding
    rng = np.random.default_rng(seed)
    rows, reached = max(1, CHUNK_ELEMENTS // effects.size), 0
    for start in range(0, resamples, rows):
        signs = rng.integers(0, 2, size=(min(rows, resamples - start), effects.size)) * 2 - 1
        reached += int(np.count_nonzero(np.abs(signs @ effects) >= observed))
    return min(1.0, (reached + 1) / (resamples + 1))


def compare_paired_balanced(y_true, pred_a, pred_b, n_classes: int, *, resamples: int, seed: int,
                            confidence: float = 0.95, alpha: float = 0.05) -> PairedComparison:
    """Two models' balanced accuracies (:func:`balanced_accuracy`) on the same test images: the
    difference a - b with a paired percentile bootstrap interval (both models resampled on the
    same image positions, ``numpy.random.default_rng(seed)`` as :func:`paired_bootstrap_difference`)
    and the p-value of the paired randomisation test :func:`sign_flip_p` of that difference.

    The difference is a sum over the discordant images (``only_a``/``only_b``), each weighing
    ``1 / (classes x images of its class)``; the test swaps the two models' answers on each
    image at random. On equal classes every weight is the same and it is McNemar's exact test;
    unlike the percentile bootstrap it stays valid on few discordant images, so significance
    asks both to agree, as for accuracy. :func:`images_needed` (McNemar's) is None.

    Raises:
        InputError: label arrays of different or zero length, or labels out of range.
        ParameterError: as :func:`paired_bootstrap_difference`, and ``alpha`` not in (0, 1).
    """
    confidence, resamples, seed = _confidence(confidence), _resamples(resamples), _seed(seed)
    alpha = _confidence(alpha, "alpha")
    y_true, pred_a = _labels(y_true, pred_a, n_classes)
    _, pred_b = _labels(y_true, pred_b, n_classes)
    correct_a, correct_b = y_true == pred_a, y_true == pred_b
    per_image = correct_a.astype(np.float64) - correct_b
    values = np.empty(resamples)
    for start, indices in _index_chunks(len(y_true), resamples, seed):
        values[start:start + len(indices)] = _balanced_differences(y_true, per_image, indices, int(n_classes))
    score_a, score_b = balanced_accuracy(y_true, pred_a, n_classes), balanced_accuracy(y_true, pred_b, n_classes)
    support = np.bincount(y_true, minlength=n_classes)
    weights = 1.0 / (np.count_nonzero(support) * support[y_true])
    low, high = _percentile_interval(values, confidence)
    only_a, only_b = int(np.count_nonzero(correct_a & ~correct_b)), int(np.count_nonzero(correct_b & ~correct_a))
    return PairedComparison(
        n=len(y_true), accuracy_a=score_a, accuracy_b=score_b, difference=score_a - score_b, ci_low=low, ci_high=high,
        only_a=only_a, only_b=only_b, p_value=sign_flip_p(per_image * weights, resamples=resamples, seed=seed),
        images_needed=None, alpha=alpha, metric="balanced_accuracy")

# ---------------------------------------------------------------------------- repeats

def repeat_seeds(seed: int, repeats: int) -> tuple[int, ...]:
    """The ``repeats`` seeds a stochastic model is trained with (params.yaml ``evaluation.repeats``).

    The first is ``seed`` itself, so one repeat is exactly the single run; the others are
    ``numpy.random.SeedSequence(seed).spawn(repeats - 1)``, each child's first uint32 word
    (``generate_state(1)[0]``): the same on every machine, and independent streams.

    Raises:
        ParameterError: ``seed`` not an integer >= 0, or ``repeats`` not an integer >= 1.
    """
    seed = _seed(seed)
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ParameterError(f"repeats must be an integer >= 1; got {repeats!r}")
    children = np.random.SeedSequence(seed).spawn(int(repeats) - 1)
    return (seed, *(int(child.generate_state(1)[0]) for child in children))

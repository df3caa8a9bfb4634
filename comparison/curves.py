"""Learning curves: nested training subsets, the points' records, the crossover, the figure.

A learning curve retrains the best classical and the best deep configuration on growing,
nested, stratified subsets of the training split and evaluates each on the same test images
(``learning_curve`` stage). Everything here is pure: label arrays, per-image correctness and
point records in, indices, numbers, text and a Figure out.

* :func:`nested_subset`  the training rows of one fraction: per class, the first
  ``max(MIN_PER_CLASS, round(fraction * n_class))`` rows of one seeded permutation of that
  class, so a smaller fraction's rows are always a subset of a larger one's and every class
  is present whatever the other fractions are.
* :func:`crossover`      the smallest training size from which one approach is significantly
  better (McNemar p < alpha) at that size and every larger one, with its bracket.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from comparison.errors import ComparisonError
from models.statistics import mcnemar_exact, wilson_interval

MIN_PER_CLASS = 2  # every class keeps at least this many training images (all, if it has fewer)
APPROACHES = ("classical", "deep")


def nested_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted row indices of ``y``'s stratified subset of ``fraction`` (in (0, 1]); nested in ``fraction``."""
    if not 0.0 < fraction <= 1.0:
        raise ComparisonError(f"fraction = {fraction!r}: must be in (0, 1]")
    y = np.asarray(y).ravel()
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):  # sorted labels: the draws do not depend on the rows' order of classes
        rows = rng.permutation(np.flatnonzero(y == label))
        keep = min(len(rows), max(MIN_PER_CLASS, int(round(fraction * len(rows)))))
        chosen.append(rows[:keep])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def model_point(model: str, approach: str, correct: np.ndarray, *, n_train: int, fit_seconds: float | None,
                epochs: int | None, confidence: float, reused: bool) -> dict:
    """One model's record at one training size: test accuracy with its Wilson interval and its cost."""
    correct = np.asarray(correct, dtype=bool)
    low, high = wilson_interval(int(correct.sum()), len(correct), confidence)
    return {"model": model, "approach": approach, "n_train": int(n_train),
            "test_accuracy": round(float(correct.mean()), 6), "ci_low": round(low, 6), "ci_high": round(high, 6),
            "fit_seconds": None if fit_seconds is None else round(float(fit_seconds), 4),
            "epochs": None if epochs is None else int(epochs), "reused": bool(reused)}


def paired_against(points: list[dict], correct: Mapping[str, np.ndarray]) -> list[dict]:
    """``points`` with McNemar's exact test of each model against the first model of the other
    approach (``other``, ``only_this``, ``only_other``, ``p_vs_other``; None without one)."""
    lead = {}
    for point in points:
        lead.setdefault(point["approach"], point["model"])
    out = []
    for point in points:
        other = next((lead[a] for a in APPROACHES if a != point["approach"] and a in lead), None)
        fields = {"other": other, "only_this": None, "only_other": None, "p_vs_other": None}
        if other:
            only_this, only_other, p = mcnemar_exact(correct[point["model"]], correct[other])
            fields |= {"only_this": only_this, "only_other": only_other, "p_vs_other": float(f"{p:.6g}")}
        out.append(point | fields)
    return out


def lead_pair(points: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
    """The first model of each approach among one size's points: the pair the crossover compares."""
    pair: dict[str, dict] = {}
    for point in points:
        pair.setdefault(point["approach"], dict(point))
    return pair


def _leader(pair: Mapping[str, Mapping[str, Any]], alpha: float) -> str | None:
    """The significantly better approach of one size's pair, or None."""
    c, d = pair["classical"], pair["deep"]
    if c["p_vs_other"] is None or c["p_vs_other"] >= alpha or c["test_accuracy"] == d["test_accuracy"]:
        return None
    return "deep" if d["test_accuracy"] > c["test_accuracy"] else "classical"


def crossover(sizes: Sequence[Sequence[Mapping[str, Any]]], alpha: float) -> dict:
    """The crossover of a learning curve: ``sizes`` holds each training size's points (as
    :func:`paired_against` returns them), any order. Returns ``status`` -- ``crossover`` (one
    approach is significantly better from ``size`` on, at every larger size; it was not at the
    size below: the crossover lies in ``bracket`` = (size below, size]), ``throughout`` (it is
    significantly better at every size measured: any crossover lies below the smallest) or
    ``none`` -- with ``winner``, the models and a ``text`` sentence."""
    pairs = sorted((lead_pair(points) for points in sizes), key=lambda p: p["classical"]["n_train"])
    if not pairs or any(set(p) != set(APPROACHES) for p in pairs):
        raise ComparisonError("a learning curve's crossover needs one classical and one deep model at every size")
    leaders = [_leader(p, alpha) for p in pairs]
    start = len(leaders)
    while start > 0 and leaders[start - 1] is not None and leaders[start - 1] == leaders[-1]:
        start -= 1
    names = {a: pairs[-1][a]["model"] for a in APPROACHES}
    measured = [p["classical"]["n_train"] for p in pairs]
    result = {"alpha": alpha, "sizes": measured, "leaders": leaders, "models": names,
              "winner": None, "size": None, "bracket": None}
    if start == len(leaders):
        result |= {"status": "none", "text": (
            f"no crossover within this data: at no training size from {measured[0]:,} to {measured[-1]:,} images is "
            f"one approach significantly better (McNemar p < {alpha:g}) there and at every larger size")}
        return result
    winner = leaders[-1]
    loser = "deep" if winner == "classical" else "classical"
    size = measured[start]
    who = f"{winner} ({names[winner]}) is significantly better than {loser} ({names[loser]}) (McNemar p < {alpha:g})"
    result |= {"winner": winner, "size": size}
    if start == 0:
        result |= {"status": "throughout", "text": (
            f"no crossover within this data: {who} at every training size measured, from {size:,} to "
            f"{measured[-1]:,} images; a crossover, if any, lies below {size:,} images")}
        return result
    below = measured[start - 1]
    behind = [f"{n:,}" for n, leader in zip(measured[:start], leaders) if leader == loser]
    before = (f"{loser} was significantly better at {', '.join(behind)} images" if behind
              else "no significant difference at the smaller sizes")
    where = (f"at every size from {size:,} to {measured[-1]:,} images" if size != measured[-1]
             else f"at {size:,} images, the largest size measured")
    result |= {"status": "crossover", "bracket": [below, size], "text": (
        f"crossover between {below:,} and {size:,} training images: {who} {where}; {before}")}
    return result


def curve_rows(sizes: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict]:
    """Every point of every size as one flat row (the CSV ``dvc plots`` draws), by size then model."""
    rows = [dict(point) for points in sizes for point in points]
    return sorted(rows, key=lambda r: (r["n_train"], APPROACHES.index(r["approach"]), r["model"]))


CSV_COLUMNS = ("model", "approach", "fraction", "n_train", "test_accuracy", "ci_low", "ci_high", "fit_seconds",
               "epochs", "reused", "other", "only_this", "only_other", "p_vs_other")


def fraction_text(fraction: float) -> str:
    """``10 %``, ``2.5 %``: a fraction as printed."""
    percent = 100 * fraction
    return f"{percent:.0f} %" if math.isclose(percent, round(percent)) else f"{percent:g} %"

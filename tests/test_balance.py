"""Imbalanced classes (issue 23): balanced accuracy per model, evaluation.metric's choice, and the
leaderboard and verdict decided on it.

Known answers on constructed predictions: 840 test images, 800 of class 0 and 40 of class 1
(1:20). ``raw-logreg`` always answers the majority class; ``hog-logreg`` misses 16 majority and
20 minority images; ``lenet5`` misses 80 majority (those 16 among them) and 4 minority images.

                 accuracy          balanced accuracy
    raw-logreg   800/840 = 95.24   (1 + 0) / 2     = 0.50
    hog-logreg   804/840 = 95.71   (0.98 + 0.5) / 2 = 0.74
    lenet5       756/840 = 90.00   (0.9 + 0.9) / 2  = 0.90
"""
from __future__ import annotations

import csv
import io
import warnings

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import balanced_accuracy_score

from comparison import leaderboard, statistics
from comparison.metrics import IMBALANCE_RATIO, Metric, choose_metric
from comparison.predictions import Predictions
from comparison.results import model_row
from models.evaluate import classification_metrics
from models.statistics import (balanced_accuracy, balanced_accuracy_interval, bootstrap_interval,
                               compare_paired_balanced, sign_flip_p)

MAJORITY, MINORITY = 800, 40
Y = np.r_[np.zeros(MAJORITY, np.int64), np.ones(MINORITY, np.int64)]
TRAINING_COUNTS = [4000, 200]  # the training split's classes, 1:20


def predicted(majority_wrong: int, minority_right: int) -> np.ndarray:
    """Wrong on the first ``majority_wrong`` majority images, right on the first ``minority_right`` minority ones."""
    y = Y.copy()
    y[:majority_wrong] = 1
    y[MAJORITY + minority_right:] = 0
    return y


PREDICTED = {"raw-logreg": predicted(0, 0), "hog-logreg": predicted(16, 20), "lenet5": predicted(80, 36)}
# validation scores as a train stage records them: raw-logreg best on accuracy, hog-logreg on balanced accuracy
VAL = {"raw-logreg": (0.96, 0.5), "hog-logreg": (0.955, 0.75), "lenet5": (0.9, 0.88)}
SETTINGS = dict(confidence=0.95, resamples=2000, alpha=0.05, seed=42)


def evaluate(metric: Metric):
    """compare's computation (comparison.leaderboard.evaluate) on the constructed predictions."""
    rows = []
    for model, y_pred in PREDICTED.items():
        approach = "deep" if model == "lenet5" else "classical"
        val_accuracy, val_balanced = VAL[model]
        data = {"test_accuracy": round(float(np.mean(y_pred == Y)), 6), "macro_f1": 0.5, "param_count": 10,
                "macro_f1_ci_low": 0.4, "macro_f1_ci_high": 0.6,  # recorded: only the other intervals computed
                "val_accuracy": val_accuracy, "val_balanced_accuracy": val_balanced, "split_sha256": "s" * 64,
                "dataset": "toy", "fit_seconds": 1.0}
        rows.append(model_row(approach, model, data, where=model, fix="rerun"))
    scores = np.eye(2)
    images = statistics.TestImages({m: Predictions.of(Y, p, scores[p], "probability") for m, p in PREDICTED.items()})
    settings = statistics.Settings(**SETTINGS, metric=metric.name)
    return leaderboard.evaluate(rows, images, metric, settings)


def test_balanced_accuracy_is_mean_recall_of_the_present_classes():
    assert [balanced_accuracy(Y, p, 2) for p in PREDICTED.values()] == pytest.approx([0.5, 0.74, 0.9], abs=1e-12)
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 50), rng.integers(0, 5, 50)  # class 4 predicted, never true
    with warnings.catch_warnings():  # scikit-learn warns of the predicted class 4, which it leaves out too
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(y_true, y_pred)
    assert balanced_accuracy(y_true, y_pred, 6) == pytest.approx(expected, abs=1e-12)
    names = [str(c) for c in range(6)]
    assert classification_metrics(y_true, y_pred, names)["balanced_accuracy"] == round(expected, 6)


@pytest.mark.parametrize("setting, counts, name", [
    ("auto", TRAINING_COUNTS, "balanced_accuracy"),
    ("auto", [124, 121, 118, 123], "accuracy"),  # the digits default's training split: 124 / 118 = 1.05
    ("auto", [150, 100], "balanced_accuracy"),  # exactly IMBALANCE_RATIO
    ("auto", [149, 100], "accuracy"),
    ("auto", None, "accuracy"),  # no counts known
    ("accuracy", TRAINING_COUNTS, "accuracy"),
    ("balanced_accuracy", [100, 100], "balanced_accuracy"),
])
def test_auto_balances_from_one_and_a_half_to_one(setting, counts, name):
    assert IMBALANCE_RATIO == 1.5
    assert choose_metric(setting, counts).name == name


def test_the_statement_names_metric_setting_and_classes():
    assert choose_metric("auto", TRAINING_COUNTS).statement == "metric: balanced accuracy (auto, training classes 1:20)"
    assert choose_metric("accuracy", [118, 124]).statement == ("metric: accuracy (evaluation.metric, training "
                                                               "classes 1:1.05)")
    assert choose_metric("auto", [36, 36], "test").statement == "metric: accuracy (auto, test classes 1:1)"


def test_auto_on_1_to_20_ranks_selects_and_decides_on_balanced_accuracy():
    rows, summary, line = evaluate(choose_metric("auto", TRAINING_COUNTS))
    assert [r["model"] for r in rows] == ["lenet5", "hog-logreg", "raw-logreg"]  # by test balanced accuracy
    assert [r["balanced_accuracy"] for r in rows] == [0.9, 0.74, 0.5]
    assert [r["near_top"] for r in rows] == ["yes", "", ""]
    assert summary["best_classical"]["model"] == "hog-logreg"  # on validation balanced accuracy
    assert summary["selection"] == "validation balanced accuracy"
    assert summary["metric"] == {"name": "balanced_accuracy", "setting": "auto", "class_ratio": 20.0,
                                 "counted": "training",
                                 "statement": "metric: balanced accuracy (auto, training classes 1:20)"}
    v = summary["verdict"]
    assert (v["metric"], v["test"], v["winner"], v["significant"]) == ("balanced_accuracy", "permutation", "deep",
                                                                       True)
    assert v["difference"] == pytest.approx(0.16, abs=1e-9) and 0 < v["ci_low"] < 0.16 < v["ci_high"]
    assert v["p_value"] < 0.05 and v["images_needed"] is None
    # 16 minority images right only for lenet5 (1/80 each) against 64 majority ones (1/1600 each)
    assert (v["only_deep"], v["only_classical"]) == (16, 64)
    assert summary["accuracy_difference"] == pytest.approx(756 / 840 - 804 / 840, abs=1e-6)  # test accuracy still
    assert line.startswith("deep (lenet5) beats classical (hog-logreg) by 16.0 points of balanced accuracy, 95 % CI [")
    assert ", permutation p < 0.001 (16 vs 64 images), with 10 vs 10 parameters" in line and "McNemar" not in line
    assert line.endswith("(best of each approach chosen on validation balanced accuracy, compared on 840 test "
                         "images); metric: balanced accuracy (auto, training classes 1:20)")


def test_accuracy_on_the_same_data_keeps_mcnemar_and_the_majority_side_wins():
    rows, summary, line = evaluate(choose_metric("accuracy", TRAINING_COUNTS))
    assert [r["model"] for r in rows] == ["hog-logreg", "raw-logreg", "lenet5"]  # by test accuracy
    assert summary["best_classical"]["model"] == "raw-logreg"  # on validation accuracy
    v = summary["verdict"]
    assert (v["metric"], v["test"], v["winner"]) == ("accuracy", "McNemar", "classical")
    assert (v["only_deep"], v["only_classical"]) == (36, 80)  # lenet5's 36 minority hits vs its 80 majority misses
    assert v["difference"] == pytest.approx(-44 / 840, abs=1e-6) and v["images_needed"] is not None
    assert line.startswith("classical (raw-logreg) beats deep (lenet5) by 5.2 points, 95 % CI [")
    assert "McNemar p < 0.001 (80 vs 36 images)" in line
    assert line.endswith("; metric: accuracy (evaluation.metric, training classes 1:20)")


def test_the_bootstrap_resamples_images_as_the_definition_does():
    """Each resample's difference is that of scikit-learn's balanced accuracy on the drawn images
    (one draw of the whole index matrix: 30 x 60 positions fit in one chunk)."""
    y_true, a, b = Y[770:830], PREDICTED["lenet5"][770:830], PREDICTED["hog-logreg"][770:830]
    c = compare_paired_balanced(y_true, a, b, 2, resamples=30, seed=5, confidence=0.8)
    rows = np.random.default_rng(5).integers(0, len(y_true), size=(30, len(y_true)))
    with warnings.catch_warnings():  # a resample may lack a class
        warnings.simplefilter("ignore")
        values = [balanced_accuracy_score(y_true[r], a[r]) - balanced_accuracy_score(y_true[r], b[r]) for r in rows]
    assert (c.ci_low, c.ci_high) == pytest.approx(tuple(np.quantile(values, [0.1, 0.9])), abs=1e-12)
    assert c.difference == pytest.approx(balanced_accuracy_score(y_true, a) - balanced_accuracy_score(y_true, b))
    one = balanced_accuracy_interval(y_true, b, 2, resamples=30, seed=5, confidence=0.8)
    assert one == pytest.approx(bootstrap_interval(y_true, b, lambda t, p: balanced_accuracy(t, p, 2), resamples=30,
                                                   seed=5, confidence=0.8), abs=1e-12)
    same = compare_paired_balanced(y_true, a, a, 2, resamples=30, seed=5)
    assert (same.difference, same.ci_low, same.ci_high, same.p_value, same.significant) == (0, 0, 0, 1.0, False)


def test_balanced_tables_put_the_metric_first():
    metric = choose_metric("auto", TRAINING_COUNTS)
    rows, summary, line = evaluate(metric)
    md = leaderboard.markdown_table(rows, "Leaderboard: toy", line, metric=metric)
    header, _, first, *_ = [[cell.strip() for cell in x.strip("|").split("|")] for x in md.splitlines()
                            if x.startswith("|")]
    assert header[5:11] == ["bal acc %", "95 % CI", "≈ top", "val bal acc %", "test acc %", "macro-F1"]
    assert first[2] == "`lenet5`" and (first[5], first[7], first[8], first[9]) == ("90.00", "yes", "88.00", "90.00")
    assert "percentile bootstrap interval of the test balanced accuracy" in md
    assert "Ranked by test balanced accuracy; the verdict compares the best model of each approach by validation " \
           "balanced accuracy." in md
    record = next(csv.DictReader(io.StringIO(leaderboard.csv_text(rows))))
    assert (record["model"], record["balanced_accuracy"], record["val_balanced_accuracy"]) == ("lenet5", "0.9", "0.88")
    assert float(record["balanced_accuracy_ci_low"]) < 0.9 < float(record["balanced_accuracy_ci_high"])
    assert leaderboard.choose(summary)["champion"] == "lenet5"  # 0.88 vs 0.75 validation balanced accuracy


@pytest.mark.parametrize("only_a, only_b", [(7, 1), (10, 1), (4, 2)])
def test_on_equal_weights_the_permutation_test_is_mcnemars(only_a, only_b):
    effects = np.r_[np.full(only_a, 0.25), np.full(only_b, -0.25), np.zeros(30)]
    exact = binomtest(only_a, only_a + only_b).pvalue
    assert sign_flip_p(effects, resamples=20_000, seed=1) == pytest.approx(exact, abs=0.005)
    assert sign_flip_p(np.zeros(5), resamples=100, seed=1) == 1.0


def test_few_discordant_images_are_no_significant_difference_on_balanced_accuracy():
    """Equal classes, 7 vs 1 discordant images: the bootstrap interval excludes 0, but the
    permutation test does not reject (McNemar's p = 0.07), so, as for accuracy, no verdict."""
    y_true = np.arange(400) % 4
    a, b = y_true.copy(), y_true.copy()
    a[:5] = (a[:5] + 1) % 4  # both wrong on images 0-3, a on 4 too
    b[:4] = (b[:4] + 1) % 4
    b[5:12] = (b[5:12] + 1) % 4  # b wrong on 5-11: 7 images only a gets right, 1 only b
    c = compare_paired_balanced(y_true, a, b, 4, resamples=2000, seed=42)
    assert (c.only_a, c.only_b) == (7, 1) and c.difference == pytest.approx(6 / 400)
    assert c.ci_low > 0 and c.p_value == pytest.approx(0.0703, abs=0.015) and not c.significant

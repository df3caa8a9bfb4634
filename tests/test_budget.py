"""The budget curve and the stated budgets: comparison.budget's points from constructed results,
the per-epoch test accuracy of models.training (tiny Keras models), the verdict's budget
sentence, the report's Budget section, and read-only checks of the session's small run."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from comparison import budget, verdict
from models.statistics import wilson_interval
from pipeline import report_html

N_TEST = 200
ROWS = [  # leaderboard rows as compare reads them (deep: best_epoch from the metrics file)
    {"approach": "classical", "model": "hog-svm", "test_accuracy": 0.965, "val_accuracy": 0.96, "fit_seconds": 0.8,
     "n_test": N_TEST},
    {"approach": "deep", "model": "lenet5", "test_accuracy": 0.98, "val_accuracy": 0.975, "fit_seconds": 6.1,
     "n_test": N_TEST, "epochs_run": 4.0, "best_epoch": 3.0},
    {"approach": "classical", "model": "raw-knn", "test_accuracy": 0.95, "val_accuracy": 0.94, "fit_seconds": 0.05,
     "n_test": N_TEST},
    {"approach": "classical", "model": "sift-svm", "test_accuracy": 0.9, "val_accuracy": 0.9, "fit_seconds": None,
     "n_test": N_TEST},
]
HISTORY = {"epoch": np.array([1, 2, 3, 4]), "epoch_seconds": np.array([2.5, 1.25, 1.0, 1.25]),
           "val_accuracy": np.array([0.6, 0.9, 0.975, 0.97]), "test_accuracy": np.array([0.55, 0.91, 0.98, 0.975])}


def test_budget_points_order_cumulative_seconds_and_wilson_intervals():
    points = budget.budget_points(ROWS, {"lenet5": HISTORY}, confidence=0.9)
    # classical by fit seconds (sift-svm has none recorded: left out), then the CNN epoch by epoch
    assert [(p["model"], p["epoch"], p["seconds"]) for p in points] == [
        ("raw-knn", None, 0.05), ("hog-svm", None, 0.8),
        ("lenet5", 1, 2.5), ("lenet5", 2, 3.75), ("lenet5", 3, 4.75), ("lenet5", 4, 6.0)]
    assert [p["kept"] for p in points] == [True, True, False, False, True, False]  # lenet5 kept epoch 3
    assert [p["val_accuracy"] for p in points[2:]] == [0.6, 0.9, 0.975, 0.97]
    for p in points:
        low, high = wilson_interval(round(p["test_accuracy"] * N_TEST), N_TEST, 0.9)
        assert (p["test_accuracy_ci_low"], p["test_accuracy_ci_high"]) == (round(low, 6), round(high, 6))
    assert points[2]["test_accuracy_ci_high"] - points[2]["test_accuracy_ci_low"] > \
        points[4]["test_accuracy_ci_high"] - points[4]["test_accuracy_ci_low"]  # 55 % is less certain than 98 %
    assert budget.frontier(points) == ["raw-knn", "hog-svm"]


def test_budget_points_without_n_test_have_no_interval_and_csv_round_trips():
    rows = [{**r, "n_test": None} for r in ROWS]
    points = budget.budget_points(rows, {"lenet5": HISTORY})
    assert all(p["test_accuracy_ci_low"] is None and p["test_accuracy_ci_high"] is None for p in points)
    records = list(csv.DictReader(io.StringIO(budget.csv_text(points))))
    assert list(records[0]) == list(budget.COLUMNS)
    assert records[0] == {"approach": "classical", "model": "raw-knn", "epoch": "", "seconds": "0.05",
                          "val_accuracy": "0.94", "test_accuracy": "0.95", "test_accuracy_ci_low": "",
                          "test_accuracy_ci_high": "", "kept": "true"}
    assert [r["seconds"] for r in records if r["model"] == "lenet5"] == ["2.5", "3.75", "4.75", "6.0"]


def test_budget_curve_draws_a_line_per_cnn_and_a_point_per_classical_model():
    points = budget.budget_points(ROWS, {"lenet5": HISTORY, "alexnet": HISTORY})
    fig = budget.plot_budget_curve(points, "digits, test")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    for arch in ("lenet5", "alexnet"):
        test_line = ax.get_lines()[labels.index(f"{arch}: test accuracy after each epoch")]
        assert test_line.get_xdata().tolist() == [2.5, 3.75, 4.75, 6.0]
        assert test_line.get_ydata().tolist() == pytest.approx([55, 91, 98, 97.5])
    kept = [line for line in ax.get_lines() if line.get_label().endswith("kept epoch (chosen on validation)")]
    assert [(k.get_label(), k.get_xdata().tolist()) for k in kept] == [  # alexnet has no row: no kept epoch
        ("lenet5: kept epoch (chosen on validation)", [4.75])]
    texts = {t.get_text() for t in ax.texts}
    assert texts == {"raw-knn", "hog-svm"}  # the frontier is labelled


# --- the per-epoch test accuracy of models.training -----------------------------------------

def _tiny_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x[:64], y[:64], x[64:80], y[64:80], x[80:], y[80:]


def _tiny_model():
    import keras

    from models.training import compile_model

    keras.utils.set_random_seed(5)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(0.3)(keras.layers.Dense(8, activation="relu")(inputs))  # draws random masks
    return compile_model(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden)),
                         learning_rate=0.05, lr_schedule="constant")


def test_epoch_recorder_test_accuracy_is_model_evaluate_at_that_epoch():
    import keras

    from models.training import HISTORY_COLUMNS, epoch_recorder

    x, y, x_val, y_val, x_test, y_test = _tiny_data()
    model, rows, evaluated = _tiny_model(), [], []

    class Evaluate(keras.callbacks.Callback):  # runs after the recorder, on the same weights
        def on_epoch_end(self, epoch, logs=None):
            evaluated.append(self.model.evaluate(x_test, y_test, batch_size=8, verbose=0, return_dict=True)["accuracy"])

    model.fit(x, y, batch_size=8, epochs=3, validation_data=(x_val, y_val), verbose=0,
              callbacks=[epoch_recorder(rows, test=(x_test, y_test), batch_size=8), Evaluate()])
    assert [list(r) for r in rows] == [HISTORY_COLUMNS] * 3
    assert [r["test_accuracy"] for r in rows] == pytest.approx(evaluated, abs=1e-6)


def test_fit_with_test_images_trains_the_same_weights():
    from models.training import fit

    x, y, x_val, y_val, x_test, y_test = _tiny_data()
    runs = []
    for test in (None, (x_test, y_test)):
        model = _tiny_model()
        result = fit(model, x, y, x_val, y_val, epochs=4, batch_size=8, patience=2, verbose=0, test=test)
        runs.append((result, model.get_weights()))
    (plain, plain_weights), (scored, scored_weights) = runs
    assert all(np.array_equal(a, b) for a, b in zip(plain_weights, scored_weights))
    strip = [{k: v for k, v in r.items() if k not in ("epoch_seconds", "test_accuracy")} for r in plain.history]
    assert strip == [{k: v for k, v in r.items() if k not in ("epoch_seconds", "test_accuracy")}
                     for r in scored.history]
    assert plain.best_epoch == scored.best_epoch
    assert all(np.isnan(r["test_accuracy"]) for r in plain.history)
    assert all(0 <= r["test_accuracy"] <= 1 for r in scored.history)


# --- the stated budgets ---------------------------------------------------------------------

def _summary_with(given: dict) -> dict:
    from comparison import leaderboard, statistics

    rng = np.random.default_rng(1)
    deep, classical = rng.random(N_TEST) < 0.98, rng.random(N_TEST) < 0.95
    comparison = statistics.Settings().compare(deep, classical)
    rows = [{**ROWS[0], "test_accuracy": float(classical.mean()), "macro_f1": 0.9, "param_count": 1000,
             "dataset": "digits", "split_sha256": "s" * 64},
            {**ROWS[1], "test_accuracy": float(deep.mean()), "macro_f1": 0.9, "param_count": 61706,
             "dataset": "digits", "split_sha256": "s" * 64}]
    return leaderboard.build_summary(leaderboard.rank_rows(rows), verdict.verdict_fields(comparison, given))


def test_verdict_line_states_each_sides_budget_from_the_results():
    given = verdict.budget_fields(ROWS[0], ROWS[1], train_images=1221, val_images=216, search=False)
    assert given == {"classical": {"model": "hog-svm", "fit_seconds": 0.8, "search": False, "train_images": 1221},
                     "deep": {"model": "lenet5", "fit_seconds": 6.1, "train_images": 1221, "epochs_run": 4,
                              "best_epoch": 3}}
    summary = _summary_with(given)
    assert summary["verdict"]["budget"] == given
    line = verdict.verdict_line(summary)
    assert line.endswith("; budgets: deep (lenet5) 4 epochs (epoch 3's weights kept) in 6.1 s, classical (hog-svm) "
                         "one fit in 0.8 s, both on 1,221 training images")
    assert "s fit" not in line  # the seconds are stated once, in the budget
    assert verdict.budget_text(given, classical_first=True) == (  # when the classical model leads the verdict
        "classical (hog-svm) one fit in 0.8 s, deep (lenet5) 4 epochs (epoch 3's weights kept) in 6.1 s, "
        "both on 1,221 training images")
    searched = verdict.budget_fields(ROWS[0], ROWS[1], train_images=1221, val_images=216, search=True)
    assert verdict.verdict_line(_summary_with(searched)).endswith(
        "; budgets: deep (lenet5) 4 epochs (epoch 3's weights kept) on 1,221 training images in 6.1 s, classical "
        "(hog-svm) grid search and refit on 1,437 training + validation images in 0.8 s")


def test_report_budget_section_shows_the_budgets_and_the_curve():
    given = verdict.budget_fields(ROWS[0], ROWS[1], train_images=1221, val_images=216, search=False)
    [section] = report_html.budget_section({"verdict": {"budget": given}}, ["accuracy_bars", "budget_curve"])
    assert [list(r) for r in section.tables[0].rows] == [["deep", "lenet5", "1,221", "4 (3)", "6.1"],
                                                         ["classical", "hog-svm", "1,221", "one fit", "0.8"]]
    assert [p.src for p in section.pictures] == ["plots/budget_curve.png"]
    assert report_html.budget_section({"verdict": None}, ["accuracy_bars"]) == []


# --- the session's small run (read only) ----------------------------------------------------

@pytest.mark.slow
def test_small_run_history_budget_curve_and_budgets(small_run: Path):
    repo = small_run
    scores = json.loads((repo / "metrics/cnn/lenet5.json").read_text())
    with open(repo / "plots/history/lenet5.csv", newline="") as fh:
        history = list(csv.DictReader(fh))
    assert len(history) == scores["epochs_run"]
    # the kept epoch's test accuracy is the leaderboard's: same weights, same test images
    assert float(history[scores["best_epoch"] - 1]["test_accuracy"]) == scores["test_accuracy"]
    with open(repo / "reports/plots/budget_curve.csv", newline="") as fh:
        points = list(csv.DictReader(fh))
    deep = [p for p in points if p["model"] == "lenet5"]
    assert [float(p["test_accuracy"]) for p in deep] == [float(r["test_accuracy"]) for r in history]
    assert [float(p["seconds"]) for p in deep] == pytest.approx(
        np.cumsum([float(r["epoch_seconds"]) for r in history]), abs=1e-3)
    assert {p["model"] for p in points if p["approach"] == "classical"} == {"raw-logreg", "raw-knn", "hog-logreg",
                                                                           "hog-knn"}
    assert (repo / "reports/plots/budget_curve.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((repo / "reports/summary.json").read_text())
    manifest = json.loads((repo / "data/prepared/manifest.json").read_text())
    given = summary["verdict"]["budget"]
    assert given["deep"]["epochs_run"] == scores["epochs_run"] and given["deep"]["best_epoch"] == scores["best_epoch"]
    assert given["deep"]["train_images"] == given["classical"]["train_images"] == manifest["counts"]["train"]
    assert f"both on {manifest['counts']['train']:,} training images" in verdict.verdict_line(summary)
    page = (repo / "reports/index.html").read_text(encoding="utf-8")
    assert 'id="budget"' in page and "plots/budget_curve.png" in page

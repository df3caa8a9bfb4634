"""comparison.plots and comparison.confusion: each plot is a Figure with the expected axes, labels and contents.

The label placement of accuracy-vs-parameters is checked on the rendered figure: no two
model labels overlap, and no label covers a marker.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from models.statistics import wilson_interval
from comparison import confusion, leaderboard
from comparison import plots as report_plots

# the default params.yaml leaderboard (README, digits): model, approach, test accuracy, parameters
DEFAULT_TEN = [
    ("hog-logreg", "classical", 0.9972, 21_178), ("sobel-logreg", "classical", 0.9944, 6_922),
    ("hog-rbf_svm", "classical", 0.9917, 1_553_175), ("sift-logreg", "classical", 0.9861, 15_370),
    ("sobel-rbf_svm", "classical", 0.9833, 519_507), ("raw-rbf_svm", "classical", 0.9806, 638_421),
    ("sift-rbf_svm", "classical", 0.9722, 580_077), ("lenet5", "deep", 0.9722, 61_706),
    ("raw-logreg", "classical", 0.9444, 12_298), ("alexnet", "deep", 0.9278, 21_622_154),
]


def ranked(entries, n_test: int | None = None) -> list[dict]:
    """Ranked rows; with ``n_test``, each with the Wilson interval of its accuracy on that many images."""
    rows = leaderboard.rank_rows({"model": m, "approach": a, "test_accuracy": acc, "macro_f1": acc,
                                  "param_count": p} for m, a, acc, p in entries)
    for row in rows if n_test else ():
        low, high = wilson_interval(round(row["test_accuracy"] * n_test), n_test)
        row.update(test_accuracy_ci_low=low, test_accuracy_ci_high=high)
    return rows


def error_bars(ax) -> list[np.ndarray]:
    """The segments ((x0, y0), (x1, y1)) of each error-bar container of ``ax``."""
    return [np.array(c.lines[2][0].get_segments()) for c in ax.containers if isinstance(c, ErrorbarContainer)]


def crowded(n: int = 20, seed: int = 0) -> list[dict]:
    """``n`` models packed into one decade of parameters and two points of accuracy."""
    rng = np.random.default_rng(seed)
    names = [f"{f}-{c}" for f, c in itertools.product(("raw", "sobel", "hog", "sift"),
                                                       ("logreg", "rbf_svm", "knn", "random_forest"))]
    entries = [(names[i % len(names)] + ("" if i < len(names) else f"{i}"), "classical" if i % 4 else "deep",
                float(rng.uniform(0.96, 0.98)), int(rng.uniform(1e5, 1e6))) for i in range(n)]
    return ranked(entries)


def _label_and_marker_boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in labels]
    radius = report_plots.MARKER_PT / 2 * fig.dpi / 72
    centres = np.vstack([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])  # the markers
    markers = [(x - radius, y - radius, x + radius, y + radius) for x, y in ax.transData.transform(centres)]
    return labels, boxes, markers


def _overlap(a, b) -> bool:
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    return ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1


@pytest.mark.parametrize("rows, markers_free", [(ranked(DEFAULT_TEN, n_test=360), True), (crowded(), False)],
                         ids=["default-10", "crowded-20"])
def test_accuracy_vs_params_labels_overlap_nothing(rows, markers_free):
    """No two labels overlap and every label stays inside the axes; on the default leaderboard
    no label covers a marker either (20 models in one decade leave some a corner)."""
    fig = report_plots.plot_accuracy_vs_params(rows, "digits, test")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "number of parameters (log scale)" and ax.get_ylabel() == "test accuracy (%)"
    assert ax.get_title().endswith("\ndigits, test")
    bars = error_bars(ax)
    if "test_accuracy_ci_low" in rows[0]:  # one vertical bar per model, from the interval's low to high end
        segments = np.concatenate(bars)
        assert len(segments) == len(rows) and np.allclose(segments[:, 0, 0], segments[:, 1, 0])
        expected = sorted((100 * r["test_accuracy_ci_low"], 100 * r["test_accuracy_ci_high"]) for r in rows)
        np.testing.assert_allclose(sorted(map(tuple, segments[:, :, 1])), expected)
    else:
        assert bars == []
    labels, boxes, markers = _label_and_marker_boxes(fig)
    assert sorted(t.get_text() for t in labels) == sorted(r["model"] for r in rows)
    for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
        assert not _overlap(a.extents, b.extents), (labels[i].get_text(), labels[j].get_text())
    frame = ax.get_window_extent().padded(1)  # a label may touch the frame
    for label, box in zip(labels, boxes):
        assert frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1), label.get_text()
        if markers_free:
            assert not any(_overlap(box.extents, m) for m in markers), label.get_text()


def test_accuracy_bars_best_on_top_with_values():
    rows = ranked(DEFAULT_TEN)
    fig = report_plots.plot_accuracy_bars(rows, "digits, test")
    ax = fig.axes[0]
    ticks = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())), reverse=True)
    assert [name for _, name in ticks] == [r["model"] for r in rows]
    assert len(ax.patches) == len(rows)
    assert "99.72 %" in {t.get_text() for t in ax.texts}
    assert ax.get_xlim()[0] == 85 and ax.get_xlabel() == "test accuracy (%) (axis starts at 85 %)"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["classical", "deep"]
    assert error_bars(ax) == []  # rows without intervals


def test_accuracy_bars_carry_the_intervals():
    rows = ranked(DEFAULT_TEN, n_test=360)
    fig = report_plots.plot_accuracy_bars(rows, "digits, test")
    ax = fig.axes[0]
    (segments,) = error_bars(ax)
    # horizontal: from each interval's low to its high end, at the model's bar (best on top)
    assert np.allclose(segments[:, 0, 1], segments[:, 1, 1])
    assert segments[:, 0, 1].tolist() == list(range(len(rows)))[::-1]
    np.testing.assert_allclose(segments[:, :, 0], [(100 * r["test_accuracy_ci_low"], 100 * r["test_accuracy_ci_high"])
                                                   for r in rows])
    # the value labels sit right of the error bars, and the axis reaches below the lowest interval
    value_x = {t.get_text(): t.get_position()[0] for t in ax.texts}
    assert value_x["99.72 %"] > 100 * rows[0]["test_accuracy_ci_high"]
    assert ax.get_xlim()[0] <= min(100 * r["test_accuracy_ci_low"] for r in rows) - 5


def test_confusion_models_are_the_best_of_each_approach_then_the_next_best():
    rows = ranked(DEFAULT_TEN)
    assert [r["model"] for r in confusion.confusion_models(rows)] == [
        "hog-logreg", "sobel-logreg", "hog-rbf_svm", "lenet5"]
    assert [r["model"] for r in confusion.confusion_models(rows[:2], count=4)] == ["hog-logreg", "sobel-logreg"]
    # the verdict's models (chosen on validation) first, then the next best, in rank order
    assert [r["model"] for r in confusion.confusion_models(rows, best=["sift-logreg", "alexnet"])] == [
        "hog-logreg", "sobel-logreg", "sift-logreg", "alexnet"]
    assert [r["model"] for r in confusion.confusion_models(rows, count=2, best=["raw-logreg", "alexnet"])] == [
        "raw-logreg", "alexnet"]


def test_class_order_and_counts():
    assert confusion.class_order({"10", "2", "1"}) == ["1", "2", "10"]
    assert confusion.class_order({"cat"}, ["dog", "cat"]) == ["dog", "cat"]
    assert confusion.class_order({"cat", "emu"}, ["dog", "cat"]) == ["cat", "emu"]
    counts = confusion.confusion_counts(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["b", "a"])
    assert counts.tolist() == [[2, 0], [1, 1]]


def test_confusion_best_has_one_titled_panel_per_model_and_one_colour_bar():
    rows = ranked(DEFAULT_TEN[:3] + DEFAULT_TEN[7:8])
    classes = ["0", "1", "2"]
    panels = [(r, np.diag([5, 5, 5]) + i) for i, r in enumerate(rows)]
    fig = confusion.plot_confusion_best(panels[:3], classes, "digits, test")
    panels_shown = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert len(panels_shown) == 3
    assert panels_shown[0].get_title().splitlines() == ["#1 hog-logreg (classical)", "test accuracy 99.72 %"]
    assert [t.get_text() for t in panels_shown[0].get_xticklabels()] == classes
    assert sum(1 for ax in fig.axes if ax.get_label() == "<colorbar>") == 1
    assert fig.get_suptitle().endswith("digits, test")


def test_training_curves_draw_train_and_validation_per_arch():
    epochs = np.arange(1, 6, dtype=float)
    history = {"epoch": epochs, "accuracy": 1 - 0.5 / epochs, "val_accuracy": 0.9 - 0.5 / epochs,
               "loss": 1 / epochs, "val_loss": 1.2 / epochs}
    fig = report_plots.plot_training_curves({"lenet5": history, "alexnet": history}, "digits, test")
    ax_acc, ax_loss = fig.axes
    assert [line.get_label() for line in ax_acc.get_lines()] == [
        "lenet5 train", "lenet5 validation", "alexnet train", "alexnet validation"]
    assert ax_acc.get_lines()[0].get_ydata()[-1] == pytest.approx(90.0)  # accuracy in percent
    assert ax_loss.get_lines()[1].get_ydata()[0] == pytest.approx(1.2)
    assert ax_acc.get_ylabel() == "accuracy (%)" and ax_loss.get_xlabel() == "epoch"
    empty = report_plots.plot_training_curves({}, "digits, test")
    assert "no CNN architectures configured" in {t.get_text() for t in empty.axes[0].texts}


def test_pairwise_pvalues_heat_map():
    rows = ranked(DEFAULT_TEN[:3] + DEFAULT_TEN[7:8])
    pvalues = np.array([[np.nan, 0.5, 1e-6, 0.03],
                        [0.5, np.nan, 0.0012, 1.0],
                        [1e-6, 0.0012, np.nan, 0.2],
                        [0.03, 1.0, 0.2, np.nan]])
    fig = report_plots.plot_pairwise_pvalues(rows, pvalues, "digits, test", alpha=0.05)
    ax = fig.axes[0]
    (image,) = ax.images
    shown = image.get_array()
    assert shown.mask.tolist() == np.eye(4, dtype=bool).tolist()
    np.testing.assert_array_equal(shown.filled(np.nan), pvalues)
    assert type(image.norm).__name__ == "LogNorm" and image.norm.vmax == 1.0
    names = [r["model"] for r in rows]
    assert [t.get_text() for t in ax.get_xticklabels()] == names == [t.get_text() for t in ax.get_yticklabels()]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert len(cells) == 12 and (0, 0) not in cells
    assert [cells[(0, j)].get_text() for j in (1, 2, 3)] == ["0.50", "<0.001", "0.030"]
    assert cells[(1, 2)].get_text() == "0.001" and cells[(1, 3)].get_text() == "1"
    assert [cells[(0, j)].get_fontweight() for j in (1, 2, 3)] == ["normal", "bold", "bold"]
    assert ax.get_yticklabels()[3].get_color() == report_plots.COLOURS["deep"]
    assert sum(1 for a in fig.axes if a.get_label() == "<colorbar>") == 1
    assert "top 4 models" in ax.get_title() and ax.get_title().endswith("\ndigits, test")


def _scatter_points(ax) -> np.ndarray:
    return np.vstack([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)] or [np.empty((0, 2))])


def test_accuracy_bars_show_each_seed_as_a_dot():
    rows = ranked(DEFAULT_TEN[:4] + DEFAULT_TEN[7:8], n_test=360)
    seeds = {"sobel-logreg": [0.9944, 0.9917, 0.9889], "lenet5": [0.9722, 0.9611, 0.9806, 0.9750, 0.9694]}
    for row in rows:
        per_seed = seeds.get(row["model"], [row["test_accuracy"]])
        row.update(repeats=len(per_seed), per_seed={"seed": list(range(len(per_seed))), "test_accuracy": per_seed})
    fig = report_plots.plot_accuracy_bars(rows, "digits, test")
    ax = fig.axes[0]
    points = _scatter_points(ax)
    assert len(points) == 3 + 5  # models trained once get no dot
    y_of = {r["model"]: y for r, y in zip(rows, range(len(rows))[::-1])}
    expected = sorted((100 * a, y_of[m]) for m, accs in seeds.items() for a in accs)
    np.testing.assert_allclose(sorted(map(tuple, points)), expected)
    (segments,) = error_bars(ax)  # the Wilson error bars stay, one per model
    assert len(segments) == len(rows)
    assert "dots: each seed's accuracy" in ax.get_title()
    assert ax.get_xlim()[0] <= 96.11 - 5 and len(ax.patches) == len(rows)


def test_accuracy_bars_without_repeats_have_no_dots():
    rows = ranked(DEFAULT_TEN, n_test=360)
    before = report_plots.plot_accuracy_bars(rows, "digits, test").axes[0]
    for row in rows:
        row.update(repeats=1, per_seed={"seed": [0], "test_accuracy": [row["test_accuracy"]]})
    ax = report_plots.plot_accuracy_bars(rows, "digits, test").axes[0]
    assert len(_scatter_points(ax)) == 0 and "dots" not in ax.get_title()
    assert ax.get_title() == before.get_title() and ax.get_xlim() == before.get_xlim()
    assert [t.get_position() for t in ax.texts] == [t.get_position() for t in before.texts]

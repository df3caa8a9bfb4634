"""models.evaluate: metrics, confusion data, confusion plot and prediction timing."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import models.evaluate as evaluate
from models.evaluate import classification_metrics, confusion_long_rows, plot_confusion, time_predict
from models.errors import InputError, ParameterError

NAMES = ["a", "b", "c"]
Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_metrics_match_hand_computation():
    metrics = classification_metrics(Y_TRUE, Y_PRED, NAMES)
    # a: predicted at 0, 5 (1 right), 2 actual; b: predicted at 1, 2, 3 (2 right), 2 actual;
    # c: predicted at 4 (right), 2 actual
    hand = {"a": (1 / 2, 1 / 2, 2), "b": (2 / 3, 2 / 2, 2), "c": (1 / 1, 1 / 2, 2)}
    for name, (p, r, support) in hand.items():
        assert metrics["per_class"][name] == {
            "precision": round(p, 6), "recall": round(r, 6), "f1": round(f1(p, r), 6), "support": support,
        }
    assert metrics["test_accuracy"] == round(4 / 6, 6)
    assert metrics["macro_f1"] == round((1 / 2 + 4 / 5 + 2 / 3) / 3, 6)
    assert metrics["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_metrics_are_plain_json_and_stable():
    first = json.dumps(classification_metrics(Y_TRUE, Y_PRED, NAMES), sort_keys=True)
    again = json.dumps(classification_metrics(np.array(Y_TRUE), np.array(Y_PRED), NAMES), sort_keys=True)
    assert first == again


def test_absent_class_keeps_its_row_and_counts_in_macro_f1():
    metrics = classification_metrics(Y_TRUE, Y_PRED, [*NAMES, "d"])
    assert metrics["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["confusion"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert metrics["macro_f1"] == round((1 / 2 + 4 / 5 + 2 / 3 + 0) / 4, 6)


@pytest.mark.parametrize(
    ("y_true", "y_pred"), [([0, 1], [0]), ([], []), ([0, 3], [0, 1]), ([0, 1], [0, -1]), ([0.0, 1.0], [0, 1])]
)
def test_bad_labels_are_an_input_error(y_true, y_pred):
    with pytest.raises(InputError):
        classification_metrics(y_true, y_pred, NAMES)
    with pytest.raises(InputError):
        confusion_long_rows(y_true, y_pred, NAMES)


def test_confusion_long_rows():
    rows = confusion_long_rows(Y_TRUE, Y_PRED, NAMES)
    assert rows == [
        {"actual": "a", "predicted": "a"}, {"actual": "a", "predicted": "b"},
        {"actual": "b", "predicted": "b"}, {"actual": "b", "predicted": "b"},
        {"actual": "c", "predicted": "c"}, {"actual": "c", "predicted": "a"},
    ]


def test_plot_confusion_figure():
    confusion = [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]  # zero row must not divide by 0
    fig = plot_confusion(confusion, [*NAMES, "d"], "logreg on hog")
    assert isinstance(fig, Figure) and isinstance(fig.canvas, FigureCanvasAgg)
    [ax] = fig.axes
    assert ax.get_title() == "logreg on hog"
    assert [t.get_text() for t in ax.texts] == [str(c) for row in confusion for c in row]
    assert ax.images[0].get_array().max() == 1.0
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_plot_confusion_draws_into_a_given_panel():
    fig = Figure()
    left, right = fig.subplots(1, 2)
    returned = plot_confusion([[3, 1], [0, 4]], ["cat", "dog"], "panel", ax=right)
    assert returned is fig and len(fig.axes) == 2
    assert not left.images and right.get_title() == "panel"
    assert [t.get_text() for t in right.texts] == ["3", "1", "0", "4"]
    np.testing.assert_allclose(right.images[0].get_array(), [[0.75, 0.25], [0.0, 1.0]])
    assert [t.get_rotation() for t in right.get_xticklabels()] == [45.0, 45.0]  # names longer than 2 characters


def test_plot_confusion_writes_counts_up_to_15_classes_only():
    names = [str(i) for i in range(16)]
    many = plot_confusion(np.eye(16, dtype=int) * 5, names, "16 classes")
    assert not many.axes[0].texts
    assert [t.get_rotation() for t in many.axes[0].get_xticklabels()] == [0.0] * 16  # short names stay upright
    fifteen = plot_confusion(np.eye(15, dtype=int) * 5, names[:15], "15 classes")
    assert len(fifteen.axes[0].texts) == 15 * 15


def test_plot_confusion_shape_mismatch():
    with pytest.raises(InputError, match="3x3"):
        plot_confusion([[1, 0], [0, 1]], NAMES, "t")


def test_time_predict_uses_fastest_run(monkeypatch):
    clock = iter([0.0, 2.0, 10.0, 10.5, 20.0, 21.0])  # runs of 2 s, 0.5 s, 1 s
    monkeypatch.setattr(evaluate, "perf_counter", lambda: next(clock))
    calls = []

    def predict(X):
        calls.append(len(X))
        return [0] * len(X)

    predictions, images_per_second = time_predict(predict, np.zeros((10, 4)), repeats=3)
    assert calls == [10, 10, 10]
    assert predictions.tolist() == [0] * 10
    assert images_per_second == 10 / 0.5


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True])
def test_time_predict_bad_repeats(repeats):
    with pytest.raises(ParameterError, match="repeats"):
        time_predict(lambda X: X, np.zeros(3), repeats=repeats)


def test_import_does_not_load_sklearn_or_matplotlib():
    code = "import sys, models.evaluate; assert not {'sklearn', 'matplotlib'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)

"""The explain stage: disagreement galleries, per-class deltas, confident mistakes, the
confusion difference and the page, on a small generated run (tests/explain_run.py)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from explain_run import (CLASSICAL, CLASSICAL_WRONG, DEEP, DEEP_WRONG, ONLY_CLASSICAL_RIGHT, ONLY_DEEP_RIGHT,
                         make_explain_run, wrong_at)

from helpers import REPO_ROOT
from comparison import explain as analysis
from comparison.errors import ComparisonError
from comparison.predictions import Predictions
from pipeline import explain, report_html
from pipeline.config import load_config
from pipeline.errors import DataError

Y = np.repeat(np.arange(3), 10)  # the generated run's test labels: 10 images per class


def predictions(y_pred, scores=None, order=None) -> Predictions:
    scores = np.eye(3)[y_pred] * 0.8 + 0.1 if scores is None else np.asarray(scores, dtype=np.float64)
    p = Predictions(np.arange(len(Y)), Y.copy(), np.asarray(y_pred), scores, "probability")
    if order is not None:
        p = Predictions(p.index[order], p.y_true[order], p.y_pred[order], p.scores[order], p.score_kind)
    return p


def small_config(**extra):
    return load_config(REPO_ROOT / "params.yaml", {"features.sift.n_words": 8, "features.kmeans.n_centroids": 8,
                                                   "features.kmeans.n_patches": 2000, "features.n_jobs": 1, **extra})


def test_galleries_pick_exactly_the_disagreeing_images_in_any_row_order():
    shuffled = np.random.default_rng(0).permutation(len(Y))
    c, d = analysis.aligned(predictions(wrong_at(Y, CLASSICAL_WRONG)),
                           predictions(wrong_at(Y, DEEP_WRONG), order=shuffled), (CLASSICAL, DEEP))
    only_c, only_d = analysis.disagreements(c, d)
    assert only_c.tolist() == ONLY_CLASSICAL_RIGHT
    assert only_d.tolist() == ONLY_DEEP_RIGHT


def test_aligned_refuses_predictions_of_different_images():
    other = predictions(Y)
    other = Predictions(other.index + 1, other.y_true, other.y_pred, other.scores, "probability")
    with pytest.raises(ComparisonError, match="cover different test images"):
        analysis.aligned(predictions(Y), other, (CLASSICAL, DEEP))


def test_per_class_accuracy_and_difference():
    rows = analysis.per_class(predictions(wrong_at(Y, CLASSICAL_WRONG)), predictions(wrong_at(Y, DEEP_WRONG)),
                             ["a", "b", "c"])
    assert [(r["class"], r["n_test"], r["classical_accuracy"], r["deep_accuracy"], r["difference"]) for r in rows] == [
        ("a", 10, 0.9, 0.9, 0.0), ("b", 10, 0.9, 0.8, -0.1), ("c", 10, 1.0, 0.9, -0.1)]


def test_confident_mistakes_are_the_wrong_predictions_by_descending_score():
    y_pred = wrong_at(Y, (3, 14, 22))
    scores = np.full((len(Y), 3), 0.1)
    scores[np.arange(len(Y)), y_pred] = 0.5
    scores[3, y_pred[3]], scores[14, y_pred[14]], scores[22, y_pred[22]] = 0.6, 0.95, 0.7
    scores[0, y_pred[0]] = 0.99  # a confident right answer is not a mistake
    p = predictions(y_pred, scores)
    assert analysis.confident_mistakes(p, 5).tolist() == [14, 22, 3]
    assert analysis.confident_mistakes(p, 2).tolist() == [14, 22]


def test_confusion_difference_counts_deep_minus_classical():
    c, d = predictions(wrong_at(Y, CLASSICAL_WRONG)), predictions(wrong_at(Y, DEEP_WRONG))
    diff = analysis.confusion(d, 3) - analysis.confusion(c, 3)
    expected = np.zeros((3, 3), dtype=int)
    expected[0, 0], expected[0, 1] = 1, -1      # position 0: classical wrong (0->1), deep right
    expected[0, 0], expected[0, 1] = 0, 0       # ... and position 5: deep wrong (0->1)
    expected[1, 1], expected[1, 2] = -1, 1      # position 12: deep wrong (1->2); 11 is wrong for both
    expected[2, 2], expected[2, 0] = -1, 1      # position 25: deep wrong (2->0)
    np.testing.assert_array_equal(diff, expected)
    assert diff.sum() == 0


def test_pictures_to_draw_start_with_the_disagreements():
    chosen = analysis.pictures_to_draw(np.array([5, 12, 25]), np.array([0]), 30, 3, seed=1)
    assert chosen == [5, 0, 12]
    more = analysis.pictures_to_draw(np.array([], int), np.array([], int), 30, 4, seed=1)
    assert len(set(more)) == 4 and all(0 <= i < 30 for i in more)


def test_stage_writes_galleries_deltas_and_a_page_linking_only_existing_files(mlflow_tmp, capsys):
    make_explain_run(mlflow_tmp)
    counts = explain.run(small_config())
    out = mlflow_tmp / "reports/explain"
    with (out / "disagreements.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["index"]) for r in rows if r["right"] == "classical"] == ONLY_CLASSICAL_RIGHT
    assert [int(r["index"]) for r in rows if r["right"] == "deep"] == ONLY_DEEP_RIGHT
    assert rows[0]["true"] == "top" and rows[0]["deep_pred"] == "middle"  # class names, not indices
    with (out / "per_class.csv").open() as fh:
        assert [float(r["difference"]) for r in csv.DictReader(fh)] == [0.0, -0.1, -0.1]
    saved = json.loads((out / "summary.json").read_text())
    assert (saved["only_classical_right"], saved["only_deep_right"], saved["both_wrong"]) == (3, 1, 1)
    assert counts["classical"] == CLASSICAL and counts["deep"] == DEEP

    page = (mlflow_tmp / "reports/index.html").read_text(encoding="utf-8")
    sources = report_html.image_sources(page)
    assert report_html.missing_images(page, mlflow_tmp / "reports") == []
    for expected in ("explain/only_classical_right.png", "explain/only_deep_right.png", "explain/per_class.png",
                     "explain/mistakes_classical.png", "explain/mistakes_deep.png",
                     "explain/confusion_difference.png", "plots/accuracy_bars.png",
                     "explain/visualize/lecture/stride.png", "explain/visualize/test-0005/hog.png",
                     "explain/visualize/test-0005/bovw.png"):
        assert expected in sources
    assert not any("training_curves" in s for s in sources)  # compare's plot is absent here: not linked
    assert "lenet5" in page and "no significant difference" in page  # the verdict line of summary.json
    assert "the report was not logged" in capsys.readouterr().out  # no MLflow comparison run: one line, no failure


def test_stage_logs_the_page_to_the_comparison_run(mlflow_tmp):
    import mlflow

    from pipeline.tracking import stage_run

    summary = make_explain_run(mlflow_tmp)
    cfg = small_config()
    with stage_run("compare", experiment=cfg.experiment, run_name="comparison", dataset="synthetic",
                   split_sha256=summary["split_sha256"], tags={"approach": "comparison"}) as run:
        run_id = run.info.run_id
    explain.run(cfg)
    client = mlflow.MlflowClient()
    logged = {a.path for a in client.list_artifacts(run_id, "report")}
    assert {"report/index.html", "report/explain", "report/plots"} <= logged
    assert "report/explain/only_classical_right.png" in {a.path for a in client.list_artifacts(run_id, "report/explain")}


def test_page_shows_no_picture_that_was_not_written(tmp_path):
    counts = {"classical": CLASSICAL, "deep": DEEP, "n_test": 30, "only_classical_right": 0, "only_deep_right": 0,
              "both_wrong": 0, "classical_mistakes": 0, "deep_mistakes": 0,
              "per_class_rows": [{"class": "a<b>", "n_test": 1, "classical_accuracy": 1.0, "deep_accuracy": 1.0,
                                  "difference": 0.0}]}
    page = explain.build_page({"dataset": "toy"}, "verdict & <line>", [], ["per_class.png"], counts, [], [], "95 %")
    assert [s for s in report_html.image_sources(page) if s.startswith("explain/")] == ["explain/per_class.png"]
    assert "verdict &amp; &lt;line&gt;" in page and "a&lt;b&gt;" in page  # text is escaped
    assert report_html.missing_images(page, tmp_path) == ["explain/per_class.png"]


def test_stage_needs_both_approaches(mlflow_tmp):
    make_explain_run(mlflow_tmp)
    summary = json.loads((mlflow_tmp / "reports/summary.json").read_text())
    summary["best_deep"] = None
    (mlflow_tmp / "reports/summary.json").write_text(json.dumps(summary))
    with pytest.raises(DataError, match="needs a best classical and a best deep model"):
        explain.run(small_config())
    assert not (mlflow_tmp / "reports/index.html").exists()

"""The learning curve (issue 22): nested stratified subsets, the crossover with known answers, and
the stage inside DVC (a changed fraction reruns only its point)."""
from __future__ import annotations

import html
import json
import re
import subprocess

import numpy as np
import pytest
import yaml

from comparison import curves
from comparison.errors import ComparisonError
from helpers import REPO_ROOT, SMALL_RUN_CLASSIFIERS, SMALL_RUN_CURVE_FRACTIONS, SMALL_RUN_EPOCHS, warm_env
from worktree import copy_finished_repo

N_TEST = 400


def correct_vector(n_right: int, rng: np.random.Generator, n: int = N_TEST) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rng.choice(n, n_right, replace=False)] = True
    return out


def size_points(n_train: int, acc_classical: float, acc_deep: float, rng: np.random.Generator) -> list[dict]:
    """One size's two points, each model right on its share of N_TEST images drawn at random."""
    correct = {"hog-svm": correct_vector(round(acc_classical * N_TEST), rng),
               "cnn": correct_vector(round(acc_deep * N_TEST), rng)}
    points = [curves.model_point(model, approach, correct[model], n_train=n_train, fit_seconds=1.0, epochs=None,
                                 confidence=0.95, reused=False)
              for model, approach in (("hog-svm", "classical"), ("cnn", "deep"))]
    return curves.paired_against(points, correct)


def test_the_crossover_is_found_in_its_bracket_when_deep_overtakes_classical(rng):
    # classical far ahead on little data, level at 400 images, deep far ahead from 1,600 on
    sizes = [size_points(n, c, d, rng) for n, c, d in
             ((100, 0.80, 0.40), (400, 0.82, 0.80), (1600, 0.84, 0.97), (6400, 0.85, 0.99))]
    result = curves.crossover(sizes[::-1], alpha=0.05)  # any order
    assert result["status"] == "crossover"
    assert (result["winner"], result["size"], result["bracket"]) == ("deep", 1600, [400, 1600])
    assert result["leaders"] == ["classical", None, "deep", "deep"]
    assert "between 400 and 1,600 training images" in result["text"]
    assert "classical was significantly better at 100 images" in result["text"]


def test_a_lead_that_is_lost_again_at_a_larger_size_is_no_crossover(rng):
    sizes = [size_points(n, c, d, rng) for n, c, d in ((100, 0.5, 0.9), (400, 0.5, 0.9), (1600, 0.9, 0.9))]
    result = curves.crossover(sizes, alpha=0.05)
    assert result["status"] == "none" and result["winner"] is None
    assert result["text"].startswith("no crossover within this data")


def test_equal_models_have_no_crossover_and_it_says_so(rng):
    sizes = [size_points(n, a, a, rng) for n, a in ((100, 0.7), (400, 0.8), (1600, 0.9))]
    result = curves.crossover(sizes, alpha=0.05)
    assert result["status"] == "none" and result["bracket"] is None
    assert result["leaders"] == [None, None, None]
    assert result["text"].startswith("no crossover within this data")


def test_one_approach_ahead_at_every_size_is_stated_as_no_crossover_below_the_smallest(rng):
    sizes = [size_points(n, 0.95, d, rng) for n, d in ((100, 0.5), (400, 0.7))]
    result = curves.crossover(sizes, alpha=0.05)
    assert (result["status"], result["winner"], result["size"]) == ("throughout", "classical", 100)
    assert "lies below 100 images" in result["text"]


def test_each_model_is_tested_against_the_other_approach_on_the_same_images():
    correct = {"a-b": np.array([1, 1, 1, 1, 0, 1], bool), "net": np.array([0, 0, 0, 1, 0, 1], bool)}
    points = [curves.model_point(m, a, correct[m], n_train=10, fit_seconds=None, epochs=3, confidence=0.95,
                                 reused=True) for m, a in (("a-b", "classical"), ("net", "deep"))]
    paired = curves.paired_against(points, correct)
    assert [(p["other"], p["only_this"], p["only_other"]) for p in paired] == [("net", 3, 0), ("a-b", 0, 3)]
    assert paired[0]["p_vs_other"] == paired[1]["p_vs_other"] == 0.25  # exact binomial, 3 of 3 discordant
    assert paired[0]["ci_low"] < paired[0]["test_accuracy"] < paired[0]["ci_high"]


@pytest.mark.parametrize("seed", [0, 7])
def test_subsets_are_nested_stratified_and_keep_every_class(seed):
    y = np.repeat(np.arange(5), [3, 40, 100, 7, 250])
    np.random.default_rng(seed).shuffle(y)
    fractions = [0.02, 0.1, 0.25, 0.5, 1.0]
    subsets = [curves.nested_subset(y, f, seed) for f in fractions]
    for small, large in zip(subsets, subsets[1:]):
        assert set(small) < set(large)
    for fraction, rows in zip(fractions, subsets):
        counts = np.bincount(y[rows], minlength=5)
        assert counts.min() >= min(curves.MIN_PER_CLASS, 3)
        assert abs(counts[4] - fraction * 250) <= 1  # the large class keeps its share
    assert np.array_equal(subsets[-1], np.arange(len(y)))
    assert np.array_equal(curves.nested_subset(y, 0.25, seed), subsets[2])  # same seed, same rows
    assert not np.array_equal(curves.nested_subset(y, 0.25, seed + 1), subsets[2])


def test_a_fraction_outside_zero_to_one_is_refused():
    with pytest.raises(ComparisonError, match="fraction = 1.5"):
        curves.nested_subset(np.arange(4), 1.5, 0)


def test_the_config_refuses_bad_fractions_in_one_line():
    from pipeline.config import parse_config
    from pipeline.errors import ConfigError

    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    for fractions, message in (([0.5, 0.0], re.escape("0.0 is not a fraction in (0, 1]")),
                               ([0.5, 0.5], "must not repeat")):
        raw["curve"] = {"fractions": fractions}
        with pytest.raises(ConfigError, match=message):
            parse_config(raw)


def test_curve_models_must_be_configured_and_of_both_approaches():
    from pipeline.config import parse_config
    from pipeline.errors import ConfigError
    from pipeline.curve_plan import curve_models

    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    chosen = {"best_classical": {"model": "hog-knn"}, "best_deep": {"model": "alexnet"}}
    assert curve_models(parse_config(raw), chosen) == ["hog-knn", "alexnet"]  # compare's choice
    assert curve_models(parse_config(raw), chosen | {"best_deep": None}) == []  # no deep model: no curve
    raw["curve"] = {"models": ["hog-logreg", "lenet5"]}
    assert curve_models(parse_config(raw), chosen) == ["hog-logreg", "lenet5"]
    for models, message in ((["hog-logreg", "vgg16"], "'vgg16' is not a configured model"),
                            (["hog-logreg", "raw-knn"], "at least one classical .* and one deep")):
        raw["curve"] = {"models": models}
        with pytest.raises(ConfigError, match=f"curve.models = .*{message}"):
            curve_models(parse_config(raw), chosen)


def _dvc(repo, *args) -> str:
    out = subprocess.run(["dvc", *args], cwd=repo, env=warm_env({"PYTHONPATH": str(repo)}), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _set_fractions(repo, fractions: list[float]) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["curve"]["fractions"] = fractions
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.slow
def test_the_small_run_states_its_curve_on_the_report_and_in_mlflow(small_run):
    from mlflow import MlflowClient

    from pipeline.report_html import image_sources

    summary = json.loads((small_run / "reports/curve/summary.json").read_text())
    assert sorted({r["fraction"] for r in summary["points"]}) == SMALL_RUN_CURVE_FRACTIONS
    chosen = json.loads((small_run / "reports/summary.json").read_text())
    models = [chosen["best_classical"]["model"], chosen["best_deep"]["model"]]
    assert {r["model"] for r in summary["points"]} == set(models)
    for row in summary["points"]:  # the whole split's point is the model already trained, not a retrained one
        sub = "cnn" if row["approach"] == "deep" else "classical"
        trained = json.loads((small_run / f"metrics/{sub}/{row['model']}.json").read_text())
        assert row["reused"] == (row["fraction"] == 1.0)
        if row["reused"]:
            assert row["test_accuracy"] == trained["test_accuracy"]
    page = (small_run / "reports/index.html").read_text(encoding="utf-8")
    assert "curve/learning_curve.png" in image_sources(page)
    assert html.escape(summary["crossover"]["text"]) in page
    client = MlflowClient(tracking_uri=f"sqlite:///{small_run}/mlflow.db")
    name = yaml.safe_load((small_run / "params.yaml").read_text())["mlflow"]["experiment"]
    experiment = client.get_experiment_by_name(name)
    points = client.search_runs([experiment.experiment_id], "tags.stage = 'learning_curve'")
    parents = {r.data.tags["mlflow.parentRunId"] for r in points}
    assert len(points) == 2 * len(SMALL_RUN_CURVE_FRACTIONS) and len(parents) == 1
    assert client.get_run(parents.pop()).data.tags["approach"] == "comparison"
    assert {r.data.metrics["n_train"] for r in points} == {r["n_train"] for r in summary["points"]}


@pytest.mark.slow
@pytest.mark.heavy
def test_a_changed_fraction_reruns_only_its_point(small_run, tmp_path):
    repo = copy_finished_repo(small_run, tmp_path / "repo")
    _set_fractions(repo, [0.2, *SMALL_RUN_CURVE_FRACTIONS])
    ran = re.findall(r"Running stage '([^']+)'", _dvc(repo, "repro", "learning_curve"))
    assert ran == ["learning_curve@0.2"]  # the points of 0.5 and 1.0 are unchanged
    small, larger = (json.loads((repo / f"curves/{f}.json").read_text()) for f in ("0.2", "0.5"))
    assert small["n_train"] < larger["n_train"]
    assert [p["approach"] for p in small["points"]] == ["classical", "deep"]
    assert all(p["ci_low"] <= p["test_accuracy"] <= p["ci_high"] and not p["reused"] for p in small["points"])
    _set_fractions(repo, [0.3, *SMALL_RUN_CURVE_FRACTIONS])
    ran = re.findall(r"Running stage '([^']+)'", _dvc(repo, "repro", "learning_curve"))
    assert ran == ["learning_curve@0.3"]


@pytest.mark.slow
@pytest.mark.heavy
def test_only_a_change_to_a_model_the_curve_follows_reruns_its_points(small_run, tmp_path, monkeypatch):
    from pipeline import curve_plan
    from pipeline.errors import DataError

    repo = copy_finished_repo(small_run, tmp_path / "repo")
    plan_path = repo / "reports/curve_plan.json"
    plan = json.loads(plan_path.read_text())
    classical = next(m for m in plan["models"] if "-" in m)
    other = next(c for c in SMALL_RUN_CLASSIFIERS if not classical.endswith(f"-{c}"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["classical"][other] |= {"logreg": {"C": 1e-6}, "knn": {"n_neighbors": 25, "weights": "uniform"}}[other]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = plan_path.read_bytes()
    ran = re.findall(r"Running stage '([^']+)'", _dvc(repo, "repro", "learning_curve"))
    assert "compare" in ran and any(s.startswith("train_classical@") and s.endswith(f"-{other}") for s in ran)
    assert not [s for s in ran if s.startswith("learning_curve")], ran  # the curve's models are untouched
    assert plan_path.read_bytes() == before

    params["cnn"]["lenet5"]["train"]["epochs"] = SMALL_RUN_EPOCHS - 2  # the curve's deep model
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = re.findall(r"Running stage '([^']+)'", _dvc(repo, "repro", "learning_curve"))
    assert sorted(s for s in ran if s.startswith("learning_curve")) == sorted(
        f"learning_curve@{f}" for f in SMALL_RUN_CURVE_FRACTIONS)

    monkeypatch.chdir(repo)
    assert curve_plan.read() == json.loads(plan_path.read_text())["models"]
    test_csv = repo / f"predictions/{classical}/test.csv"
    test_csv.write_text(test_csv.read_text() + "\n")
    with pytest.raises(DataError, match=f"predictions/{classical}/test.csv: changed since `compare` planned"):
        curve_plan.read()

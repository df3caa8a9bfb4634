"""evaluation.repeats through the real stages: extra seeds of stochastic models (comparison/repeats.py,
the features, train_classical and train_cnn stages) on small generated data and a temporary MLflow store."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from helpers import REPO_ROOT, make_split as make_band_split, square_split
from models.statistics import repeat_seeds
from comparison import repeats
from pipeline import features, train_classical
from pipeline.config import parse_config
from pipeline.errors import DataError
from pipeline.io import save_split

NEW_KEYS = ("repeats", "test_accuracy_mean", "test_accuracy_sd", "val_accuracy_mean", "macro_f1_mean",
            "macro_f1_sd", "per_seed")


def make_split(seed: int = 0):
    """Dim squares in strong noise: hard enough that a small random forest's accuracy depends on its seed."""
    return square_split({"train": 45, "val": 30, "test": 60}, noise=160, square=60, add=True, seed=seed)


def make_config(repeats: int = 1, experiment: str = "test-repeats", **cnn):
    raw = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    raw["mlflow"]["experiment"] = experiment
    raw["evaluation"]["repeats"] = repeats
    raw["evaluation"]["bootstrap_resamples"] = 200
    raw["features"].update({"names": ["raw", "sift"], "n_jobs": 1})
    raw["features"]["sift"].update({"n_words": 8, "spatial_pyramid": False})
    raw["classical"]["random_forest"].update({"n_estimators": 5, "n_jobs": 1})
    raw["cnn"].update({"epochs": 1, "batch_size": 16, "patience": 2, "mixed_precision": "off", **cnn})
    return parse_config(raw)


@pytest.fixture
def workdir(mlflow_tmp):
    save_split(mlflow_tmp / "data/prepared/split.npz", make_split())
    return mlflow_tmp


def scores_of(model_id: str, approach: str = "classical") -> dict:
    return json.loads(Path(f"metrics/{'classical' if approach == 'classical' else 'cnn'}/{model_id}.json").read_text())


def without_new_keys(scores: dict) -> str:
    """The metrics file as it would be written without the repeat keys (write_json's format)."""
    return json.dumps({k: v for k, v in scores.items() if k not in NEW_KEYS}, indent=2, sort_keys=True)


def logged_run(model_id: str) -> str:
    """The classical model's MLflow run, logged from its files as `compare` does."""
    from pipeline.model_runs import log_classical_runs
    from pipeline.tracking import experiment_id_of

    run_ids, _ = log_classical_runs(experiment_id_of("cvd-repeats-test"), [{"approach": "classical", "model": model_id}],
                                    ["top", "middle", "bottom"])
    return run_ids[model_id]


def seed_runs(parent_id: str) -> list:
    return MlflowClient().search_runs(
        [mlflow.get_run(parent_id).info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'",
        order_by=["attributes.start_time ASC"])


def assert_summary(scores: dict, n: int) -> None:
    """repeats, mean and sample sd agree with the per-seed lists; the first seed is the model's own."""
    per_seed = scores["per_seed"]
    assert scores["repeats"] == n and set(per_seed) == {"seed", "test_accuracy", "val_accuracy", "macro_f1"}
    assert all(len(values) == n for values in per_seed.values())
    assert per_seed["seed"] == list(repeat_seeds(42, n))
    for key in ("test_accuracy", "val_accuracy", "macro_f1"):
        assert per_seed[key][0] == scores[key], key
        assert scores[f"{key}_mean"] == pytest.approx(np.mean(per_seed[key]), abs=1e-6), key
    for key in ("test_accuracy", "macro_f1"):
        sd = np.std(per_seed[key], ddof=1) if n > 1 else 0.0
        assert scores[f"{key}_sd"] == pytest.approx(sd, abs=1e-6), key


def test_random_forest_repeats_add_per_seed_scores_and_keep_the_first_seed_bit_identical(workdir):
    features.run(make_config(), "raw")
    outputs = ("predictions/raw-random_forest/test.csv", "predictions/raw-random_forest/val.csv",
               "plots/confusion/raw-random_forest.csv")
    train_classical.run(make_config(1), "raw", "random_forest")
    once, once_files = scores_of("raw-random_forest"), [Path(p).read_bytes() for p in outputs]
    assert_summary(once, 1)
    assert once["test_accuracy_sd"] == once["macro_f1_sd"] == 0.0
    assert seed_runs(logged_run("raw-random_forest")) == []

    train_classical.run(make_config(3), "raw", "random_forest")
    thrice = scores_of("raw-random_forest")
    assert_summary(thrice, 3)
    per_seed = thrice["per_seed"]
    assert len(set(zip(per_seed["test_accuracy"], per_seed["val_accuracy"], per_seed["macro_f1"]))) > 1
    assert thrice["test_accuracy_sd"] > 0 or thrice["macro_f1_sd"] > 0
    # the first seed is today's single run, byte for byte
    assert without_new_keys(thrice) == without_new_keys(once)
    assert [Path(p).read_bytes() for p in outputs] == once_files

    run_id = logged_run("raw-random_forest")
    runs = seed_runs(run_id)
    assert [r.info.run_name for r in runs] == [f"raw-random_forest-seed{s}" for s in per_seed["seed"][1:]]
    for i, run in enumerate(runs, start=1):
        assert run.info.status == "FINISHED"
        assert (run.data.tags["approach"], run.data.tags["model"], run.data.tags["seed"]) == (
            "classical", "raw-random_forest", str(per_seed["seed"][i]))
        assert {k: run.data.metrics[k] for k in ("test_accuracy", "val_accuracy", "macro_f1")} == {
            k: per_seed[k][i] for k in ("test_accuracy", "val_accuracy", "macro_f1")}
    parent = mlflow.get_run(run_id).data.metrics
    assert parent["repeats"] == 3 and parent["test_accuracy_sd"] == thrice["test_accuracy_sd"]
    assert parent["test_accuracy"] == thrice["test_accuracy"]  # the model run keeps the first seed's scores


def test_a_deterministic_model_trains_once_whatever_repeats_says(workdir):
    cfg = make_config(3)
    features.run(cfg, "raw")
    with np.load("data/features/raw.npz") as npz:
        assert not [key for key in npz.files if "__seed" in key]  # raw takes no seed: no extra matrices
    train_classical.run(cfg, "raw", "logreg")
    scores = scores_of("raw-logreg")
    assert_summary(scores, 1)
    assert scores["per_seed"]["seed"] == [42] and seed_runs(logged_run("raw-logreg")) == []


def test_sift_features_make_logreg_stochastic(workdir):
    features.run(make_config(1), "sift")
    with np.load("data/features/sift.npz") as npz:
        single = {key: npz[key] for key in npz.files}
    assert not [key for key in single if "__seed" in key]

    cfg = make_config(3)
    features.run(cfg, "sift")
    extra = repeat_seeds(42, 3)[1:]
    with np.load("data/features/sift.npz") as npz:
        data = {key: npz[key] for key in npz.files}
    assert set(data) == set(single) | {repeats.matrix_key(p, s) for p in ("train", "val", "test") for s in extra}
    for key, value in single.items():
        assert np.array_equal(data[key], value), key  # the first seed's matrices are unchanged
    for seed in extra:  # each seed its own codebook: same shape, other words
        assert data[repeats.matrix_key("train", seed)].shape == data["x_train"].shape
        assert data[repeats.matrix_key("test", seed)].dtype == np.float32
        assert not np.array_equal(data[repeats.matrix_key("train", seed)], data["x_train"])

    train_classical.run(cfg, "sift", "logreg")
    scores = scores_of("sift-logreg")
    assert_summary(scores, 3)
    assert len(seed_runs(logged_run("sift-logreg"))) == 2


def test_missing_seed_matrices_fail_before_training(workdir):
    features.run(make_config(1), "sift")
    with pytest.raises(DataError, match=r"^data/features/sift\.npz: no matrices for seed \d+ of evaluation\.repeats"
                                        r" = 2; rerun `cvd features --name sift`$"):
        train_classical.run(make_config(2), "sift", "logreg")
    assert not Path("metrics/classical/sift-logreg.json").exists()


def test_stochastic_models_are_every_cnn_and_those_with_a_seeded_part():
    assert repeats.extractor_is_stochastic("sift") and not repeats.extractor_is_stochastic("hog")
    assert repeats.classical_is_stochastic("raw", "random_forest")
    assert repeats.classical_is_stochastic("sift", "knn")
    assert not repeats.classical_is_stochastic("hog", "rbf_svm")
    assert repeats.seeds(42, 4, stochastic=False) == (42,) and repeats.seeds(42, 4) == repeat_seeds(42, 4)


@pytest.mark.slow
def test_cnn_repeats_train_a_second_lenet5(mlflow_tmp):
    from pipeline import train_cnn

    save_split(mlflow_tmp / "data/prepared/split.npz", make_band_split())
    single = train_cnn.run(make_config(1, "test-repeats-cnn"), "lenet5")
    once = scores_of("lenet5", "deep")
    test_csv = Path("predictions/lenet5/test.csv").read_bytes()
    result = train_cnn.run(make_config(2, "test-repeats-cnn"), "lenet5")
    twice = scores_of("lenet5", "deep")
    assert_summary(once, 1)
    assert_summary(twice, 2)
    assert without_new_keys(twice) == without_new_keys(once)  # op determinism: the first seed is unchanged
    assert Path("predictions/lenet5/test.csv").read_bytes() == test_csv
    assert twice["per_seed"]["test_accuracy"][1] >= 0.9  # the bands separate after one epoch whatever the seed
    (run,) = seed_runs(result["mlflow_run_id"])
    assert run.info.run_name == f"lenet5-seed{repeat_seeds(42, 2)[1]}" and run.data.tags["approach"] == "deep"
    assert run.data.metrics["test_accuracy"] == twice["per_seed"]["test_accuracy"][1]
    assert seed_runs(single["mlflow_run_id"]) == []

"""The data stages' MLflow runs, logged by compare from the files prepare and features wrote
(pipeline/data_runs.py): what each run holds, logged once per set of files."""
from __future__ import annotations

import copy
import json

import yaml
from mlflow import MlflowClient

from helpers import REPO_ROOT
from pipeline import data_runs, features, prepare
from pipeline.config import parse_config


def make_config():
    raw = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    raw["data"]["limit_per_class"] = 20
    raw["features"].update({"names": ["raw", "hog"], "n_jobs": 1})
    return parse_config(raw)


def data_runs_by_name(tmp) -> dict:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classic-vs-deep-data")
    return {} if experiment is None else {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}


def test_compare_logs_each_data_stage_once_per_set_of_files(mlflow_tmp):
    cfg = make_config()
    manifest = prepare.run(cfg)
    results = {name: features.run(cfg, name) for name in cfg.features.names}
    assert data_runs_by_name(mlflow_tmp) == {}  # the stages themselves log nothing

    assert data_runs.log_data_runs(cfg) == 3
    runs = data_runs_by_name(mlflow_tmp)
    assert sorted(runs) == ["features-hog", "features-raw", "prepare-digits"]
    prep = runs["prepare-digits"].data
    assert prep.tags["stage"] == "prepare" and prep.tags["split_sha256"] == manifest["sha256"]
    assert prep.metrics["n_test"] == manifest["counts"]["test"] > 0 and prep.metrics["num_classes"] == 10
    assert prep.params["data.limit_per_class"] == "20"
    hog = runs["features-hog"].data
    assert hog.tags["stage"] == "features" and hog.tags["feature"] == "hog" and hog.tags["dataset"] == "digits"
    assert hog.metrics["dimension"] == results["hog"]["dimension"]
    assert hog.metrics["fit_seconds"] == results["hog"]["fit_seconds"]
    assert hog.params["orientations"] == str(cfg.features.section("hog")["orientations"])
    assert all(r.info.status == "FINISHED" for r in runs.values())

    assert data_runs.log_data_runs(cfg) == 0  # the same files: nothing new
    again = features.run(cfg, "raw")  # a rerun writes new timings: one new run of that stage only
    assert data_runs.log_data_runs(cfg) == 1
    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_tmp / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name("classic-vs-deep-data").experiment_id
    raw_runs = client.search_runs([experiment_id], "tags.data_run = 'features-raw'",
                                  order_by=["attributes.start_time DESC"])
    assert len(raw_runs) == 2 and raw_runs[0].data.metrics["transform_seconds"] == again["transform_seconds"]
    assert json.loads((mlflow_tmp / "metrics/features/raw.json").read_text()) == again

"""The data stages' MLflow runs (``prepare``, ``features@<name>``), logged by ``compare`` from the
files those stages wrote.

``prepare`` and ``features`` import no MLflow: importing it and opening its store took about
2.5 s of a feature stage that extracts the digits in a tenth of that. ``compare``, which opens
the store anyway, logs one run per data stage in ``<experiment>-data``
(:func:`pipeline.tracking.data_experiment`): the numbers of the stage's metrics (split counts;
a feature set's dimension, fit/transform seconds, images/s), its settings as params and the
shared tags. Each run is tagged ``result_sha256`` of the stage's files, so a rerun of ``compare``
after no rerun of a data stage logs nothing new (as :mod:`pipeline.model_runs` does for models).
"""
from __future__ import annotations

from typing import Any

from pipeline import layout
from pipeline.config import Config
from pipeline.io import read_json
from pipeline.model_logging import RESULT_TAG, files_digest, finished_run

DATA_RUN_TAG = "data_run"  # prepare-<dataset> / features-<name>: which data stage's files a run holds


def prepare_run(cfg: Config) -> dict[str, Any] | None:
    """What ``prepare``'s run holds; None when its manifest is missing or not a full one."""
    manifest = read_json(layout.MANIFEST) if layout.MANIFEST.is_file() else {}
    if not {"dataset", "sha256", "counts", "num_classes"} <= set(manifest):
        return None
    skipped = manifest.get("skipped_files") or {}
    return {"stage": "prepare", "name": f"prepare-{manifest['dataset']}", "files": (layout.MANIFEST,),
            "dataset": manifest["dataset"], "split_sha256": manifest["sha256"],
            "metrics": {"n_" + part: n for part, n in manifest["counts"].items()}
                       | {"num_classes": manifest["num_classes"], "skipped_files": sum(skipped.values())},
            "params": {"seed": cfg.seed, "data": vars(cfg.data)}, "tags": {}}


def features_run(name: str, dataset: str, split_sha256: str) -> dict[str, Any] | None:
    """What ``features@<name>``'s run holds; None when the stage's files are missing."""
    from pipeline.extractors import load_extractor

    if not (layout.feature_metrics_path(name).is_file() and layout.extractor_path(name).is_file()):
        return None
    return {"stage": "features", "name": f"features-{name}", "dataset": dataset, "split_sha256": split_sha256,
            "files": (layout.feature_metrics_path(name), layout.extractor_path(name)),
            "metrics": read_json(layout.feature_metrics_path(name)),
            "params": dict(load_extractor(name).get_params()), "tags": {"feature": name}}


def log_data_runs(cfg: Config) -> int:
    """Log the run of ``prepare`` and of each configured feature set whose files exist, unless
    one with the same files is logged already; returns how many were logged now. Runs left
    RUNNING by killed stages are not looked for here: ``compare`` ends them first."""
    from mlflow.tracking import MlflowClient

    from pipeline.store import log_metrics, tracking_uri
    from pipeline.tracking import data_experiment, experiment_id_of, stage_run

    prepared = prepare_run(cfg)
    if prepared is None:  # no split of this pipeline: nothing of the data stages to log
        return 0
    runs = [prepared, *(features_run(name, prepared["dataset"], prepared["split_sha256"])
                        for name in cfg.features.names)]
    runs = [run for run in runs if run is not None]
    experiment = data_experiment(cfg.experiment)
    experiment_id = experiment_id_of(experiment)
    client = MlflowClient(tracking_uri=tracking_uri())
    logged = 0
    for run in runs:
        digest = files_digest(run["files"])
        if finished_run(client, experiment_id, run["name"], digest, tag=DATA_RUN_TAG):
            continue
        with stage_run(run["stage"], experiment=experiment, run_name=run["name"], dataset=run["dataset"],
                       split_sha256=run["split_sha256"], params=run["params"], end_stale=False,
                       tags=run["tags"] | {DATA_RUN_TAG: run["name"], RESULT_TAG: digest}) as active:
            log_metrics(run["metrics"], run_id=active.info.run_id)
        logged += 1
    return logged

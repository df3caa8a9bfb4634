"""A CNN's MLflow run: its Keras model (logged by ``train_cnn``), and the whole run logged later
from the stage's files when the tracking store did not answer while it trained.

``train_cnn`` logs its run live (epoch metrics as it trains). When that logging fails
(:class:`pipeline.store.Guard`) the stage still writes every output, and its
``.run.json`` names no ``mlflow_run_id`` (the unfinished run, if one was opened, is kept as
``mlflow_unfinished_run_id``). :func:`log_deep_run` then logs what the stage would have: the
same tags and params, the per-epoch ``history.*`` metrics from ``plots/history/<arch>.csv``,
the scores, plots, extra-seed runs and the Keras model, tagged ``result_sha256``
(:func:`result_digest`) so that it is logged once; the unfinished run is ended FAILED and
deleted (restorable with ``mlflow runs restore``), leaving one run per trained model.
"""
from __future__ import annotations

import csv
from typing import Any, Mapping

from pipeline import layout
from pipeline.io import read_json
from pipeline.model_logging import RESULT_TAG, files_digest, finished_run



def result_digest(arch: str) -> str:
    """SHA-256 over the CNN's metrics JSON, model file and history CSV (each length-prefixed)."""
    return files_digest((layout.scores_path("deep", arch), layout.cnn_model_path(arch), layout.history_path(arch)))


def discard_unfinished(client: Any, run_ids: list[str]) -> None:
    """End each run that is not FINISHED as FAILED and delete it (a run a failed logging left open)."""
    from mlflow.exceptions import MlflowException

    for run_id in run_ids:
        try:
            run = client.get_run(run_id)
        except MlflowException:  # not in this store: nothing to discard
            continue
        if run.info.status != "FINISHED" and run.info.lifecycle_stage == "active":
            if run.info.status == "RUNNING":
                client.set_terminated(run_id, "FAILED")
            client.delete_run(run_id)


def _history_metrics(arch: str, now_ms: int) -> list:
    from mlflow.entities import Metric

    with layout.history_path(arch).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [Metric(f"history.{key}", float(value), now_ms, int(float(row["epoch"])))
            for row in rows for key, value in row.items() if key != "epoch" and value not in ("", None)]


def log_deep_run(experiment_id: str, arch: str, digest: str, info: Mapping[str, Any]) -> str:
    """Log the run of the CNN ``arch`` from its files (see the module docstring); returns its id."""
    import time

    import keras
    import mlflow

    from models.inputs import scale_images
    from pipeline.io import load_split
    from pipeline.model_logging import log_keras_model, log_model_files, log_seed_run
    from pipeline.store import flat_params
    from pipeline.tracking import common_tags

    scores = read_json(layout.scores_path("deep", arch))
    identity = {key: str(info.get(key, "")) for key in ("approach", "arch", "model", "device", "backend")}
    tags = common_tags("train_cnn", dataset=str(info.get("dataset", "")),
                       split_sha256=str(info.get("split_sha256", ""))) | identity | {RESULT_TAG: digest}
    client = mlflow.MlflowClient()
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"deep-{arch}", tags=tags) as run:
        run_id = run.info.run_id
        mlflow.log_params(flat_params(info.get("params") or {}))
        history = _history_metrics(arch, int(time.time() * 1000))
        for start in range(0, len(history), 1000):  # MLflow's limit of metrics per batch
            client.log_batch(run_id, metrics=history[start:start + 1000])
        mlflow.log_artifact(str(layout.history_path(arch)), artifact_path="plots", run_id=run_id)
        kept = {k: v for k, v in info.items() if not k.startswith("mlflow_")}
        log_model_files(run_id, scores, kept, layout.confusion_png(arch))
        per_seed = scores.get("per_seed") or {}
        for i in range(1, len(per_seed.get("seed", ()))):
            log_seed_run(run, approach="deep", model_id=arch, scores={k: values[i] for k, values in per_seed.items()})
        model = keras.saving.load_model(layout.cnn_model_path(arch), compile=False)
        example = scale_images(load_split().x["test"][:2])
        log_keras_model(run_id, model, example, model.predict(example, verbose=0))
    return run_id


def log_deep_rows(experiment: str, rows: list[dict]) -> int:
    """Fill ``mlflow_run_id`` of the deep rows without one (their stage could not log) with their
    runs, found or logged now from their files; returns how many were logged now."""
    from mlflow.tracking import MlflowClient

    from pipeline.store import tracking_uri
    from pipeline.tracking import experiment_id_of

    todo = [r for r in rows if r["approach"] == "deep" and not r["mlflow_run_id"]
            and layout.cnn_model_path(r["model"]).is_file()]
    if not todo:
        return 0
    experiment_id = experiment_id_of(experiment)
    client = MlflowClient(tracking_uri=tracking_uri())
    new = 0
    for row in todo:
        arch = row["model"]
        digest = result_digest(arch)
        row["mlflow_run_id"] = finished_run(client, experiment_id, arch, digest) or ""
        if not row["mlflow_run_id"]:
            info = read_json(layout.run_info_path("deep", arch))
            # the run the stage left open, and one an earlier attempt at this very logging left
            left = client.search_runs([experiment_id], f"tags.{RESULT_TAG} = '{digest}' AND tags.model = '{arch}' "
                                      f"AND attributes.status != 'FINISHED'")
            discard_unfinished(client, [r.info.run_id for r in left] + ([str(info["mlflow_unfinished_run_id"])]
                                                                       if info.get("mlflow_unfinished_run_id") else []))
            row["mlflow_run_id"] = log_deep_run(experiment_id, arch, digest, info)
            new += 1
    return new

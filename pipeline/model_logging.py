"""What a model's MLflow run holds besides its metrics: its plot files, its extra-seed runs and
its parent, the ``comparison`` run (used by ``train_cnn``, ``compare`` and ``cvd log``)."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline import layout
from pipeline.store import log_metrics, tracking_uri

RESULT_TAG = "result_sha256"  # a run logged from files: their digest, so the same files are logged once


def files_digest(paths: Sequence[Path]) -> str:
    """SHA-256 over the files' bytes, each length-prefixed, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        data = Path(path).read_bytes()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def finished_run(client: Any, experiment_id: str, model_id: str, digest: str, tag: str = "model") -> str | None:
    """The id of a FINISHED run whose ``tag`` is ``model_id``, already logged from files of this
    ``digest``, if any."""
    query = (f"tags.{RESULT_TAG} = '{digest}' AND tags.{tag} = '{model_id}' "
             f"AND attributes.status = 'FINISHED'")
    found = client.search_runs([experiment_id], query, max_results=1, order_by=["attributes.start_time DESC"])
    return found[0].info.run_id if found else None


def log_model_files(run_id: str, scores: Mapping[str, Any], info: Mapping[str, Any], confusion_png: Path) -> None:
    """Log a model's scores and run info (their numbers) and its plot files to the MLflow run ``run_id``."""
    import mlflow

    model_id = info["model"]
    log_metrics(scores, run_id=run_id)
    log_metrics({key: value for key, value in info.items() if key != "params"}, run_id=run_id)
    # one artifact folder per kind, as on disk: the confusion CSV, the per-class CSV and a CNN's
    # history CSV share the file name <id>.csv, and in one folder each would replace the other
    for path in (confusion_png, layout.confusion_csv(model_id), layout.per_class_csv(model_id)):
        mlflow.log_artifact(str(path), artifact_path=f"plots/{path.parent.name}", run_id=run_id)


def link_to_parent(parent_id: str, children: Mapping[str, str]) -> tuple[int, list[tuple[str, str]]]:
    """Make ``parent_id`` the parent run of each ``{label: run id}`` in ``children``.

    Returns the number linked and ``(label, first error line)`` of each run that could not
    be tagged (deleted, or in a store that is gone): the caller decides whether that matters.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri())
    linked, failed = 0, []
    for label, run_id in children.items():
        try:
            client.set_tag(run_id, "mlflow.parentRunId", parent_id)
            linked += 1
        except MlflowException as exc:
            failed.append((label, (str(exc).splitlines() or [type(exc).__name__])[0][:160]))
    return linked, failed


def log_seed_run(parent: Any, *, approach: str, model_id: str, scores: Mapping[str, float]) -> str:
    """One extra seed's MLflow run, nested under the model's run ``parent`` (tag
    ``mlflow.parentRunId``), named ``<model id>-seed<seed>``, tagged approach/model/seed, with
    the other scores (:data:`comparison.repeats.PER_SEED_KEYS`: test_accuracy, val_accuracy,
    macro_f1); created and ended through ``MlflowClient``,
    whichever run is active. Returns its id."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=tracking_uri())
    seed = int(scores["seed"])
    tags = {"mlflow.parentRunId": parent.info.run_id, "approach": approach, "model": model_id, "seed": str(seed)}
    run_id = client.create_run(parent.info.experiment_id, run_name=f"{model_id}-seed{seed}", tags=tags).info.run_id
    now = int(time.time() * 1000)
    try:
        client.log_batch(run_id, metrics=[Metric(key, float(value), now, 0)
                                          for key, value in scores.items() if key != "seed"])
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def log_keras_model(run_id: str, model: Any, example: Any, probabilities: Any) -> None:
    """Log the inference model to run ``run_id`` as an MLflow Keras model (pyfunc-loadable)."""
    import keras
    import mlflow.keras
    from mlflow.models import Model, infer_signature

    from models.training import inference_model

    requirements = [f"keras=={keras.__version__}"]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        requirements.append(f"tensorflow=={tf.__version__}")
    # Explicit requirements: MLflow's inference of them reloads the model in a subprocess
    # (several seconds of TensorFlow start-up) and would find the same two packages.
    # No input_example: mlflow.keras.save_model writes it before creating the model folder
    # and fails with FileNotFoundError (mlflow/mlflow#16183, still in MLflow 3.17); the
    # signature (float32 tensor (-1, H, W, C) -> (-1, classes)) documents the input instead.
    # Model.log is what mlflow.keras.log_model calls, with the run_id that one lacks.
    Model.log(artifact_path=None, name="model", flavor=mlflow.keras, run_id=run_id,
              model=inference_model(model), signature=infer_signature(example, probabilities),
              pip_requirements=requirements)

"""MLflow wiring shared by every stage.

* Tracking URI: ``MLFLOW_TRACKING_URI`` when set (e.g. an ``mlflow server``), else an
  ABSOLUTE ``sqlite:///<repo root>/mlflow.db`` -- absolute because ``dvc exp run
  --temp/--queue`` runs stages in a copy under ``.dvc/tmp/exps/`` where a relative URI
  would write to a throwaway database. The store is never a DVC output.
* One run per stage invocation, opened by :func:`stage_run` with the shared tags
  (``stage``, ``dataset``, ``split_sha256``, ``git_commit``, ``pipeline_run``,
  ``dvc_exp_name``); it is marked FAILED if the stage raises.
* Explicit logging only (no autolog): stages log exactly the dict they write as DVC metrics,
  to the run id they were given.
* The classical models' runs are logged by ``compare`` (:mod:`pipeline.model_runs`): their
  stages import no MLflow.
* ``compare`` links the model runs to its comparison run (:func:`link_to_parent`);
  ``cvd compare --from-mlflow`` finds the newest model runs
  (:func:`pipeline.read_results.latest_finished_runs`).
"""
from __future__ import annotations

import contextlib
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from pipeline import layout
from pipeline.layout import find_repo_root


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if uri:
        return uri
    return f"sqlite:///{find_repo_root() / 'mlflow.db'}"


def _is_local_default(uri: str) -> bool:
    return uri.startswith("sqlite:///") and not os.environ.get("MLFLOW_TRACKING_URI")


def git_commit(root: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or find_repo_root(),
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def pipeline_run_id() -> str:
    """An id shared by all stages of one ``dvc repro`` / ``dvc exp run``.

    ``CVD_PIPELINE_RUN`` wins when set; otherwise the id of the nearest ``dvc`` ancestor
    process (pid + start time), since DVC starts every stage as its child; a stage run by
    hand gets its own id.
    """
    if os.environ.get("CVD_PIPELINE_RUN"):
        return os.environ["CVD_PIPELINE_RUN"]
    import psutil

    proc = psutil.Process()
    try:
        for parent in proc.parents():
            cmd = parent.cmdline()
            if any(Path(arg).name in ("dvc", "dvc.exe") for arg in cmd[:2]) or cmd[1:3] == ["-m", "dvc"]:
                return f"dvc-{parent.pid}-{int(parent.create_time())}"
    except (psutil.Error, OSError):
        pass
    return f"cvd-{proc.pid}-{int(proc.create_time())}"


def _experiment_id(mlflow: Any, name: str, uri: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if _is_local_default(uri):
        location = (find_repo_root() / "mlartifacts").as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by a parallel stage
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def flat_numeric(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested dicts into ``a.b`` keys, keeping finite numbers only (bools excluded)."""
    out: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_numeric(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def flat_params(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = str(value)[:6000]
    return out


def common_tags(stage: str, *, dataset: str, split_sha256: str) -> dict[str, str]:
    """The tags every run of this project carries: ``stage``, ``dataset``, ``split_sha256``,
    ``git_commit``, ``pipeline_run`` and, inside ``dvc exp run``, ``dvc_exp_name``."""
    tags = {"stage": stage, "dataset": dataset, "split_sha256": split_sha256, "git_commit": git_commit(),
            "pipeline_run": pipeline_run_id()}
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


def experiment_id_of(experiment: str) -> str:
    """Point MLflow at :func:`tracking_uri` and return the id of ``experiment``, created if new."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return _experiment_id(mlflow, experiment, uri)


def open_run(stage: str, *, experiment: str, run_name: str, dataset: str, split_sha256: str,
             tags: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None) -> Any:
    """Start (as the active run) an MLflow run with the project's common tags and ``params``."""
    import mlflow

    experiment_id = experiment_id_of(experiment)
    all_tags = common_tags(stage, dataset=dataset, split_sha256=split_sha256) | dict(tags or {})
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=all_tags)
    try:
        if params:
            mlflow.log_params(flat_params(params))
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    return run


@contextlib.contextmanager
def stage_run(stage: str, **kwargs: Any) -> Iterator[Any]:
    """:func:`open_run` around a block; the run is FAILED if the block raises."""
    import mlflow

    run = open_run(stage, **kwargs)
    try:
        yield run
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


def log_metrics(data: Mapping[str, Any], step: int | None = None, *, run_id: str | None = None) -> None:
    """Log the finite numbers of ``data`` (flattened) to ``run_id``, else to the active run."""
    import mlflow

    metrics = flat_numeric(data)
    if metrics:
        mlflow.log_metrics(metrics, step=step, run_id=run_id)


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


def data_experiment(experiment: str) -> str:
    """``<experiment>-data``: the experiment of the data stages' runs (prepare, features), so that
    ``experiment`` holds only the model runs and their comparisons (what ``cvd ui`` opens on)."""
    return f"{experiment}-data"


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

"""MLflow runs shared by every stage, on the store of :mod:`pipeline.store` (the tracking URI,
bounded waits, :func:`check_store`, :class:`Guard`: imported from there by the stages too).
* One run per stage invocation, opened by :func:`stage_run` with the shared tags
  (``stage``, ``dataset``, ``split_sha256``, ``git_commit``, ``pipeline_run``,
  ``dvc_exp_name``); it is marked FAILED if the stage raises.
* Explicit logging only (no autolog): stages log exactly the dict they write as DVC metrics.
  The classical models' and the data stages' runs are logged by ``compare`` from their files
  (:mod:`pipeline.model_runs`, :mod:`pipeline.data_runs`).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from pipeline.layout import find_repo_root
from pipeline.store import end_stale_runs, flat_params, git_commit, tracking_uri


def pipeline_run_id() -> str:
    """An id shared by all stages of one ``dvc repro`` / ``dvc exp run``: ``CVD_PIPELINE_RUN`` when
    set, else the nearest ``dvc`` ancestor process's (pid + start time; DVC starts every stage as its
    child); a stage run by hand gets its own id."""
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
    local = uri.startswith("sqlite:///") and not os.environ.get("MLFLOW_TRACKING_URI")
    location = (find_repo_root() / "mlartifacts").as_uri() if local else None
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by a parallel stage
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


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
             tags: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None,
             end_stale: bool = True) -> Any:
    """Start (as the active run) an MLflow run with the project's common tags and ``params``, after
    marking KILLED the runs that killed stages left RUNNING (:func:`pipeline.store.end_stale_runs`;
    ``end_stale=False`` when the caller has just done so)."""
    import mlflow

    if end_stale:
        end_stale_runs(tracking_uri())
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


def data_experiment(experiment: str) -> str:
    """``<experiment>-data``: the experiment of the data stages' runs (prepare, features), so that
    ``experiment`` holds only the model runs and their comparisons (what ``cvd ui`` opens on)."""
    return f"{experiment}-data"

"""MLflow wiring shared by every stage.

* Tracking URI: ``MLFLOW_TRACKING_URI`` when set (e.g. an ``mlflow server``), else an
  ABSOLUTE ``sqlite:///<repo root>/mlflow.db`` -- absolute because ``dvc exp run
  --temp/--queue`` runs stages in a copy under ``.dvc/tmp/exps/`` where a relative URI
  would write to a throwaway database. The store is never a DVC output.
* One run per stage invocation, opened by :func:`stage_run` with the shared tags
  (``stage``, ``dataset``, ``split_sha256``, ``git_commit``, ``pipeline_run``,
  ``dvc_exp_name``); it is marked FAILED if the stage raises.
* Explicit logging only (no autolog): stages log exactly the dict they write as DVC metrics.
  The classical models' runs are logged by ``compare`` (:mod:`pipeline.model_runs`).
* A server can be down: waits are bounded by MLflow's own settings (:data:`HTTP_DEFAULTS`, the
  user's values win); each stage that logs calls :func:`check_store` before its work; logging
  after the work goes through a :class:`Guard`, so a failure is one warning line and the stage's
  outputs stay complete; ``compare`` / ``cvd log`` log the missing model runs later.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from pipeline.errors import CvdError
from pipeline.layout import find_repo_root


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the local store; for a server, :data:`HTTP_DEFAULTS` are set
    where the user did not set them."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if uri.startswith(("http://", "https://")):
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
    return uri or f"sqlite:///{find_repo_root() / 'mlflow.db'}"


def git_commit(root: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or find_repo_root(),
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


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
        out |= (flat_params(value, f"{prefix}{key}.") if isinstance(value, Mapping)
                else {f"{prefix}{key}": str(value)[:6000]})
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


def data_experiment(experiment: str) -> str:
    """``<experiment>-data``: the experiment of the data stages' runs (prepare, features), so that
    ``experiment`` holds only the model runs and their comparisons (what ``cvd ui`` opens on)."""
    return f"{experiment}-data"


# --- the store as a dependency that can be down ------------------------------------------

# MLflow's defaults (7 retries, backoff factor 2, 120 s) wait ~4 min for a server that is down
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


class StoreUnreachable(CvdError):
    """The tracking server named by ``MLFLOW_TRACKING_URI`` does not answer."""


def reason(exc: BaseException) -> str:
    """The cause of an MLflow/requests failure in a few words (``Connection refused``), else its first line."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text) or re.search(r"(Read timed out|Connection aborted)", text)
    return found.group(1).strip() if found else (text.splitlines() or [type(exc).__name__])[0][:160]


def check_store() -> str:
    """Ask a tracking server for one experiment; one line (:class:`StoreUnreachable`) if it does not
    answer within MLflow's bounded retries. The local store is not asked. Returns the URI."""
    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return uri
    from mlflow import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # whatever the server or the connection raised: the store is not usable
        raise StoreUnreachable(f"MLflow tracking server {uri} (set by MLFLOW_TRACKING_URI) does not answer: "
                               f"{reason(exc)}; start it, or unset MLFLOW_TRACKING_URI to log to the local "
                               f"mlflow.db") from None
    return uri


class Guard:
    """Calls MLflow logging functions; the first that fails is remembered (:attr:`error`) and every
    later call skipped (returns None): a store that went down costs no more waiting, nor the work."""

    def __init__(self) -> None:
        self.error: str | None = None

    def __call__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import requests
        from mlflow.exceptions import MlflowException

        if self.error is not None:
            return None
        try:
            return func(*args, **kwargs)
        except (MlflowException, requests.RequestException, OSError) as exc:  # the store stopped answering
            self.error = reason(exc)
            return None

    @property
    def failed(self) -> bool:
        return self.error is not None


def unlogged_warning(guard: Guard, outputs: str, later: str = "`cvd log` logs the missing runs") -> bool:
    """Print the one warning line of a stage whose logging failed; whether it did."""
    if guard.failed:
        print(f"warning: MLflow logging to {tracking_uri()} failed ({guard.error}); {outputs} complete; {later}",
              file=sys.stderr)
    return guard.failed


def log_data_run(stage: str, metrics: dict, outputs: str, **run: Any) -> None:
    """The run of a data stage (``prepare``, ``features``; :func:`open_run`'s arguments in ``run``)
    with ``metrics``, after its ``outputs`` are written; a failure is one warning line (the numbers
    stay in the stage's metrics file; this run is not logged later)."""
    def log() -> None:
        with stage_run(stage, **run) as active:
            log_metrics(metrics, run_id=active.info.run_id)

    guard = Guard()
    guard(log)
    unlogged_warning(guard, outputs, later=f"the {stage} run is not logged (its numbers are in {outputs.split()[0]})")

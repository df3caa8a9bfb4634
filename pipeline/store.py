"""Where the MLflow runs are stored, and the store as a dependency that can be down: the tracking
URI, bounded waits, the check before a stage's work, the guard around logging after it, and the
plain logging of numbers. Like :mod:`pipeline.layout` for files, it imports only the shared leaves
(:mod:`pipeline.tracking` builds the runs on it).

* Tracking URI: ``MLFLOW_TRACKING_URI`` when set (e.g. an ``mlflow server``), else an
  ABSOLUTE ``sqlite:///<repo root>/mlflow.db`` -- absolute because ``dvc exp run
  --temp/--queue`` runs stages in a copy under ``.dvc/tmp/exps/`` where a relative URI
  would write to a throwaway database. The store is never a DVC output.
* A server can be down: waits are bounded by MLflow's own settings (:data:`HTTP_DEFAULTS`, the
  user's values win); each stage that logs calls :func:`check_store` before its work; logging
  after the work goes through a :class:`Guard`, so a failure is one warning line and the stage's
  outputs stay complete; ``compare`` / ``cvd log`` log the missing model runs later.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

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
    """The commit of the code that made a run (every run is tagged with it), or ``unknown``."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or find_repo_root(),
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


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


def log_metrics(data: Mapping[str, Any], step: int | None = None, *, run_id: str | None = None) -> None:
    """Log the finite numbers of ``data`` (flattened) to ``run_id``, else to the active run."""
    import mlflow

    metrics = flat_numeric(data)
    if metrics:
        mlflow.log_metrics(metrics, step=step, run_id=run_id)


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


# --- runs left RUNNING by a killed stage -------------------------------------------------
# A killed process (SIGKILL, the OOM killer, a power cut) cannot end its MLflow run, which would
# show as RUNNING for ever: every run opened (tracking.open_run) and compare first end them.

PARENT_TAG = "mlflow.parentRunId"


def _is_gone(pipeline_run: str) -> bool:
    """Whether the process a ``pipeline_run`` tag names is known to have ended."""
    import psutil

    kind, _, rest = pipeline_run.partition("-")
    pid, _, started = rest.partition("-")
    if kind not in ("dvc", "cvd") or not (pid.isdigit() and started.isdigit()):
        return False
    try:
        return int(psutil.Process(int(pid)).create_time()) != int(started)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def end_stale_runs(uri: str) -> list[str]:
    """Mark KILLED the RUNNING runs (every experiment of the store at ``uri``) whose process is
    gone, and their RUNNING child runs; one warning line if any; returns their ids.

    A run's process is read from its ``pipeline_run`` tag (:func:`pipeline.tracking.pipeline_run_id`:
    ``dvc-<pid>-<start time>`` of the ``dvc`` that ran the stage, or ``cvd-<pid>-<start time>`` of a
    stage run by hand). A live process's runs, runs with another ``CVD_PIPELINE_RUN`` and the runs
    of a tracking server (which other machines' pids may share) are left alone."""
    if "://" in uri and not uri.startswith(("sqlite:", "file:")):
        return []
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    running = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=5000)
    stale = {r.info.run_id: r for r in running if _is_gone(r.data.tags.get("pipeline_run", ""))}
    stale |= {r.info.run_id: r for r in running if r.data.tags.get(PARENT_TAG) in stale}
    for run_id in stale:
        client.set_terminated(run_id, "KILLED")
    if stale:
        names = ", ".join(sorted(r.info.run_name or run_id for run_id, r in stale.items())[:5])
        print(f"warning: marked KILLED {len(stale)} MLflow run(s) left RUNNING by a killed stage: {names}",
              file=sys.stderr)
    return list(stale)

"""The MLflow tracking store as a dependency that can be down.

* Bounded waits: for an ``http(s)://`` tracking URI (an ``mlflow server``) the stages set
  MLflow's own ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``_BACKOFF_FACTOR`` / ``_TIMEOUT``
  (:data:`HTTP_DEFAULTS`) unless the user set them: MLflow's defaults (7 retries, backoff
  factor 2, 120 s) wait about 4 minutes for a server that is down.
* :func:`check_store`: every stage that logs asks the server once before its work; one line
  naming the URI and ``MLFLOW_TRACKING_URI`` if it does not answer. The local SQLite store
  (no ``MLFLOW_TRACKING_URI``) is not probed.
* :class:`Guard`: logging after the work must not cost the work. The first MLflow call that
  fails is remembered, every later one skipped; the stage still writes all its outputs and
  ends with one warning line (:func:`unlogged_warning`); ``compare`` or ``cvd log`` log the
  missing runs from the files later (:mod:`pipeline.log`).
"""
from __future__ import annotations

import os
import re
import sys
from typing import Any, Callable

from pipeline.errors import CvdError
from pipeline.tracking import tracking_uri

HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
URI_VARIABLE = "MLFLOW_TRACKING_URI"


class StoreUnreachable(CvdError):
    """The tracking server named by ``MLFLOW_TRACKING_URI`` does not answer."""


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def bound_http_waits(uri: str) -> None:
    """:data:`HTTP_DEFAULTS` for a server URI, each only where the user did not set it."""
    if is_server(uri):
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)


def reason(exc: BaseException) -> str:
    """The cause of an MLflow/requests failure in a few words (``Connection refused``), else its first line."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text) or re.search(r"(Read timed out|Connection aborted)", text)
    if found:
        return found.group(1).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:160]


def check_store() -> str:
    """Ask the tracking server for one experiment; raise :class:`StoreUnreachable` (one line) if it
    does not answer within MLflow's bounded retries. Returns the URI."""
    uri = tracking_uri()
    if not is_server(uri):
        return uri
    bound_http_waits(uri)
    from mlflow import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # whatever the server or the connection raised: the store is not usable
        raise StoreUnreachable(f"MLflow tracking server {uri} (set by {URI_VARIABLE}) does not answer: "
                               f"{reason(exc)}; start it, or unset {URI_VARIABLE} to log to the local "
                               f"mlflow.db") from None
    return uri


def logging_errors() -> tuple[type[BaseException], ...]:
    """What a tracking store that stopped answering raises."""
    import requests
    from mlflow.exceptions import MlflowException

    return MlflowException, requests.RequestException, OSError


class Guard:
    """Calls MLflow logging functions; the first that fails is remembered (:attr:`error`) and every
    later call skipped (returns None), so a store that went down costs no more waiting."""

    def __init__(self) -> None:
        self.error: str | None = None

    def __call__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.error is not None:
            return None
        try:
            return func(*args, **kwargs)
        except logging_errors() as exc:
            self.error = reason(exc)
            return None

    @property
    def failed(self) -> bool:
        return self.error is not None


LATER = "`cvd log` (or the next `compare`) logs the missing runs"


def unlogged_warning(guard: Guard, outputs: str, later: str = LATER) -> bool:
    """Print the one warning line of a stage whose logging failed; whether it did."""
    if not guard.failed:
        return False
    print(f"warning: MLflow logging to {tracking_uri()} failed ({guard.error}); {outputs} complete; {later}",
          file=sys.stderr)
    return True


def log_data_run(stage: str, metrics: dict, outputs: str, **run: Any) -> None:
    """The run of a data stage (``prepare``, ``features``: :func:`pipeline.tracking.stage_run`'s
    arguments in ``run``) with ``metrics``, logged after its ``outputs`` are written; a failure is
    one warning line (its numbers stay in its metrics file: this run is not logged later)."""
    from pipeline.tracking import log_metrics, stage_run

    def log() -> None:
        with stage_run(stage, **run) as active:
            log_metrics(metrics, run_id=active.info.run_id)

    guard = Guard()
    guard(log)
    unlogged_warning(guard, outputs, later=f"the {stage} run is not logged (its numbers are in {outputs.split()[0]})")

"""MLflow runs left RUNNING by a stage that was killed (SIGKILL, the OOM killer, a power cut).

A killed process cannot end its run, which would show as RUNNING for ever. Each stage that
opens MLflow runs (``prepare``, ``features``, ``train_cnn``, ``compare``) first calls
:func:`end_stale_runs`: every RUNNING run of the store whose ``pipeline_run`` tag
(:func:`pipeline.tracking.pipeline_run_id`: ``dvc-<pid>-<start time>`` of the ``dvc`` that ran
the stage, or ``cvd-<pid>-<start time>`` of a stage run by hand) names a process that no
longer exists is marked KILLED, and so are the extra-seed runs nested under it. A live
process's runs, runs with another ``CVD_PIPELINE_RUN`` and the runs of a tracking server
(which other machines' pids may share) are left alone.
"""
from __future__ import annotations

import sys

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
    gone, and their RUNNING child runs; one warning line if any; returns their ids."""
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

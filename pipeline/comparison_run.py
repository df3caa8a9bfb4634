"""The MLflow ``comparison`` run that later stages attach to: ``explain`` logs the report to it,
each learning-curve point is a run nested under it."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def newest_comparison_run(experiment: str, split_sha256: str) -> tuple[Any, str]:
    """The newest FINISHED ``comparison`` run on this split in ``experiment``, or None with the
    reason in one line (no store, no experiment, no such run)."""
    import mlflow

    from pipeline.tracking import tracking_uri

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None, f"no store at {uri}"
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        return None, f"no experiment {experiment!r}"
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list", max_results=1,
                              filter_string=f"tags.approach = 'comparison' AND attributes.status = 'FINISHED' "
                                            f"AND tags.split_sha256 = '{split_sha256}'",
                              order_by=["attributes.start_time DESC"])
    if not runs:
        return None, f"no FINISHED comparison run on split {split_sha256[:12]} in {experiment!r}"
    return runs[0], ""

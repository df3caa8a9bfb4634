"""The MLflow ``comparison`` run that later stages attach to: ``explain`` logs the report to it,
each learning-curve point is a run nested under it (:func:`log_curve_point`)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def newest_comparison_run(experiment: str, split_sha256: str) -> tuple[Any, str]:
    """The newest FINISHED ``comparison`` run on this split in ``experiment``, or None with the
    reason in one line (no store, no experiment, no such run)."""
    import mlflow

    from pipeline.store import tracking_uri

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


def log_curve_point(experiment: str, point: dict) -> str:
    """Each model's learning-curve point (``curves/<fraction>.json``) as an MLflow run nested under
    the newest comparison run on its split, named ``curve-<model>-<percent>``; a one-line message
    either way, never an exception (logging is a convenience)."""
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        from pipeline.store import tracking_uri
        from pipeline.tracking import common_tags

        parent, reason = newest_comparison_run(experiment, point["split_sha256"])
        if parent is None:
            return f"MLflow: {reason}; the points were not logged"
        client = MlflowClient(tracking_uri=tracking_uri())
        for p in point["points"]:
            # curve_model/curve_approach, not model/approach: a point is not one of the model runs
            # that predict, cvd ui and compare --from-mlflow look up by those tags
            tags = common_tags("learning_curve", dataset=point["dataset"], split_sha256=point["split_sha256"]) | {
                "mlflow.parentRunId": parent.info.run_id, "curve_approach": p["approach"], "curve_model": p["model"],
                "curve_fraction": str(point["fraction"])}
            name = f"curve-{p['model']}-{100 * point['fraction']:g}%"
            run_id = client.create_run(parent.info.experiment_id, run_name=name, tags=tags).info.run_id
            values = {"fraction": point["fraction"], **{k: p[k] for k in (
                "n_train", "test_accuracy", "ci_low", "ci_high", "fit_seconds", "epochs", "p_vs_other")}}
            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items() if v is not None])
            client.set_terminated(run_id, "FINISHED")
        return f"MLflow: {len(point['points'])} point runs nested under comparison run {parent.info.run_id}"
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        return f"MLflow: the points were not logged ({type(exc).__name__}: {first})"

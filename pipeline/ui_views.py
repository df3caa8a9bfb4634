"""The MLflow UI view ``cvd ui`` links to.

The link carries a shared view (MLflow's ``viewStateShareKey``: the view is stored as the
experiment tag ``mlflow.sharedViewState.<key>``) that shows exactly the model runs of the
newest ``comparison`` run -- flat, although ``compare`` made them its children, because the
comparison itself is filtered out -- sorted by test accuracy, with the columns the comparison
is about (:data:`COLUMNS`); its chart view shows those runs' test accuracy, parameter count and
fit time and test accuracy against parameter count. The view's format is MLflow 3.17's (checked
in headless Chromium by tests/test_ui.py): MLflow ignores what it does not know. Without a comparison yet,
the newest FINISHED run of each model. The prepare and features runs live in their own
experiment (:func:`pipeline.tracking.data_experiment`); ``cvd ui`` prints its link too.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from pipeline.errors import DataError

VIEW_TAG = "mlflow.sharedViewState."  # MLflow's prefix of a shared view's experiment tag
VIEW_KEY_PREFIX = "cvd-models-"
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
METRICS = ("test_accuracy", "test_accuracy_ci_low", "test_accuracy_ci_high", "val_accuracy", "param_count",
           "fit_seconds", "predict_images_per_s")
TAGS = ("approach", "feature", "classifier", "arch")
COLUMNS = [f"metrics.`{m}`" for m in METRICS] + [f"tags.`{t}`" for t in TAGS]
CHARTED = ("test_accuracy", "param_count", "fit_seconds")  # bar charts; plus test accuracy against param_count


def model_run_ids(client: Any, experiment_id: str) -> list[str]:
    """The model runs of the newest comparison run, else the newest FINISHED run of each model."""
    comparisons = client.search_runs([experiment_id], "tags.approach = 'comparison' AND attributes.status = 'FINISHED'",
                                     order_by=["attributes.start_time DESC"], max_results=1)
    if comparisons and comparisons[0].data.tags.get("model_runs"):
        return comparisons[0].data.tags["model_runs"].split(",")
    newest: dict[str, str] = {}
    for approach in ("classical", "deep"):
        for run in client.search_runs([experiment_id], f"tags.approach = '{approach}' AND attributes.status = "
                                      f"'FINISHED'", order_by=["attributes.start_time DESC"], max_results=1000):
            if "seed" not in run.data.tags:  # a model's extra-seed runs are nested under it
                newest.setdefault(run.data.tags.get("model", run.info.run_id), run.info.run_id)
    return list(newest.values())


def view_state(run_ids: list[str]) -> dict:
    """MLflow's shared-view JSON: search facets and UI state of the runs page."""
    return {
        "searchFilter": "attributes.run_id IN (" + ", ".join(f"'{r}'" for r in run_ids) + ")",
        "orderByKey": "metrics.`test_accuracy`", "orderByAsc": False, "startTime": "ALL",
        "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
        "selectedColumns": COLUMNS, "columnOrder": COLUMNS, "runsHiddenMode": "SHOW_ALL",
        # the chart view: one section of the comparison's charts instead of one bar chart per metric
        "compareRunSections": [{"uuid": "cvd", "name": "Model comparison", "display": True, "isReordered": False}],
        "compareRunCharts": [*(_bar(m) for m in CHARTED), _scatter("param_count", "test_accuracy")],
        "isAccordionReordered": True,
    }


def _bar(metric: str) -> dict:
    return {"uuid": f"cvd-{metric}", "type": "BAR", "metricSectionId": "cvd", "isGenerated": False,
            "deleted": False, "metricKey": metric, "dataAccessKey": metric, "displayName": metric}


def _scatter(x: str, y: str) -> dict:
    return {"uuid": f"cvd-{x}-{y}", "type": "SCATTER", "metricSectionId": "cvd", "isGenerated": False,
            "deleted": False, "runsCountToCompare": 1000,
            "xaxis": {"key": x, "type": "METRIC", "dataAccessKey": x},
            "yaxis": {"key": y, "type": "METRIC", "dataAccessKey": y}}


def prepare_views(experiment: str) -> tuple[str, str | None, int, str | None]:
    """Tag the experiment's kind and store the models view; ``(experiment id, view key or None,
    number of model runs, id of the data experiment or None)``.

    Raises:
        DataError: the store or the experiment does not exist yet.
    """
    from mlflow.tracking import MlflowClient

    from pipeline.store import tracking_uri
    from pipeline.tracking import data_experiment

    client = MlflowClient(tracking_uri=tracking_uri())
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise DataError(f"MLflow experiment {experiment!r} not found at {tracking_uri()}: run `dvc repro` first")
    data = client.get_experiment_by_name(data_experiment(experiment))
    for exp in filter(None, (found, data)):
        if exp.tags.get(KIND_TAG) != KIND:
            client.set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
    run_ids = model_run_ids(client, found.experiment_id)
    if not run_ids:
        return found.experiment_id, None, 0, data and data.experiment_id
    text = json.dumps(view_state(run_ids), sort_keys=True)
    key = VIEW_KEY_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]
    for old in [t for t in found.tags if t.startswith(VIEW_TAG + VIEW_KEY_PREFIX) and t != VIEW_TAG + key]:
        client.delete_experiment_tag(found.experiment_id, old)  # views of older comparisons
    if found.tags.get(VIEW_TAG + key) != text:
        client.set_experiment_tag(found.experiment_id, VIEW_TAG + key, text)
    return found.experiment_id, key, len(run_ids), data and data.experiment_id


def runs_url(base: str, experiment_id: str, view_key: str | None = None) -> str:
    """The experiment's runs page in the model-training view, with the shared view if given."""
    query = "workflowType=machine_learning" + (f"&viewStateShareKey={view_key}" if view_key else "")
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"

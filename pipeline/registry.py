"""Registered champions: ``compare`` puts the models it chose in the MLflow Model Registry.

One registered model per dataset, ``classic-vs-deep-<dataset>`` (:func:`registered_name`),
whose versions are model runs' ``model`` artifacts, with three aliases:

* ``best-classical`` / ``best-deep``: the best model of each approach -- the highest
  VALIDATION accuracy, then fewer parameters, then model id (:func:`comparison.leaderboard.choose`);
* ``champion``: the better of those two by the same rule (never by test accuracy: the test
  images only measure, as in the verdict).

Each version is tagged with the model id and approach, the split hash, the git commit and,
inside ``dvc exp run``, the DVC experiment name, so a registered model leads back to the
pipeline run that made it. A model whose run already has a version reuses it: rerunning
``compare`` with the same winner creates no new version. An alias whose role has no model in
this comparison (e.g. no CNN configured) is removed rather than left pointing at an older run.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from typing import Any, Callable, Mapping, Sequence

from comparison.leaderboard import choose

ROLES = ("champion", "best-classical", "best-deep")
PREFIX = "classic-vs-deep"


def registered_name(dataset: str) -> str:
    """``classic-vs-deep-<dataset>`` (characters outside ``[A-Za-z0-9_.-]`` become ``-``)."""
    return f"{PREFIX}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', dataset) or 'unknown'}"


def _version_of_run(client: Any, name: str, run_id: str) -> str | None:
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return str(max(int(v.version) for v in found)) if found else None


def register(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> tuple[str, dict, list[str]]:
    """Register the chosen models (see the module docstring).

    ``rows`` are the leaderboard rows (``model``, ``approach``, ``mlflow_run_id``, ``split_sha256``).
    Returns ``(registered name, {alias: (model id, version, new?)}, warnings)``.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from pipeline.store import tracking_uri

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    name = registered_name(str(summary.get("dataset") or ""))
    by_model = {row["model"]: row for row in rows}
    chosen = choose(summary)
    try:
        client.create_registered_model(name, description=f"Best models of the classic-vs-deep comparison on "
                                                         f"{summary.get('dataset')}; aliases: {', '.join(ROLES)}")
    except MlflowException:  # it exists (perhaps just created by a parallel `dvc exp run`)
        client.get_registered_model(name)
    done: dict[str, tuple[str, str, bool]] = {}
    versions: dict[str, tuple[str, bool]] = {}
    failed: dict[str, tuple[list[str], str]] = {}  # model id -> (aliases, first error line)
    for alias in ROLES:
        model_id = chosen.get(alias)
        if model_id is None:
            if alias in client.get_registered_model(name).aliases:
                client.delete_registered_model_alias(name, alias)
            continue
        if model_id in failed:
            failed[model_id][0].append(alias)
            continue
        row = by_model[model_id]
        if model_id not in versions:
            try:
                versions[model_id] = _version(client, name, row)
            except MlflowException as exc:
                failed[model_id] = ([alias], (str(exc).splitlines() or [type(exc).__name__])[0][:160])
                continue
        version, new = versions[model_id]
        client.set_registered_model_alias(name, alias, version)
        done[alias] = (model_id, version, new)
    warnings = []
    if failed:
        warnings.append(f"not registered in {name}: " + "; ".join(
            f"{model_id} as {', '.join(aliases)} ({error})" for model_id, (aliases, error) in failed.items()))
    return name, done, warnings


def _version(client: Any, name: str, row: Mapping[str, Any]) -> tuple[str, bool]:
    """``(version, created now?)`` of the model run of ``row`` under ``name``: the version whose
    source run it is, else a new one tagged with where it comes from."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline.store import git_commit

    run_id = row.get("mlflow_run_id") or ""
    if not run_id:
        raise MlflowException(f"{row['model']} has no MLflow run")
    existing = _version_of_run(client, name, run_id)
    if existing:
        return existing, False
    tags = {"model": row["model"], "approach": row["approach"], "split_sha256": row["split_sha256"],
            "git_commit": git_commit(), "dvc_exp_name": os.environ.get("DVC_EXP_NAME", "")}
    # register_model prints "already exists, creating a new version" and warns that an MLflow 3
    # model lives outside the run's artifacts: both are expected here, not news to the user
    quiet = logging.getLogger("mlflow.tracking._model_registry.fluent")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            version = mlflow.register_model(f"runs:/{run_id}/model", name, tags=tags)
    finally:
        quiet.setLevel(level)
    return str(version.version), True


def describe(name: str, done: Mapping[str, tuple[str, str, bool]]) -> str:
    """One line: ``registered classic-vs-deep-digits: champion = hog-logreg (v3, new), ...``."""
    parts = [f"{alias} = {model_id} (v{version}{', new' if new else ''})"
             for alias, (model_id, version, new) in done.items()]
    return f"registered {name}: {'; '.join(parts) or 'nothing'} (models:/{name}@champion)"


def register_chosen(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], warn: Callable[[str], None]) -> str:
    """:func:`register` the chosen models, ``warn`` each problem; the line to print (:func:`describe`)."""
    name, done, warnings = register(rows, summary)
    for message in warnings:
        warn(message)
    return describe(name, done)

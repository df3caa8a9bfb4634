"""Registered champions (pipeline/registry.py) in a real MLflow store: aliases, tags, reuse."""
from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline import registry

SPLIT = "c" * 64


def log_model_run(model_id: str, approach: str) -> str:
    """A FINISHED run with a tiny scikit-learn model logged as ``model``, as the stages leave them."""
    from sklearn.linear_model import LogisticRegression

    x = np.arange(8, dtype=float).reshape(-1, 1)
    with mlflow.start_run(run_name=model_id, tags={"model": model_id, "approach": approach}) as run:
        mlflow.sklearn.log_model(LogisticRegression().fit(x, x.ravel() > 3), name="model",
                                 serialization_format="skops", pip_requirements=["scikit-learn"])
    return run.info.run_id


def row(model_id: str, approach: str, run_id: str, val: float, params: int) -> dict:
    return {"model": model_id, "approach": approach, "mlflow_run_id": run_id, "split_sha256": SPLIT,
            "val_accuracy": val, "param_count": params}


def summary_of(rows: list[dict]) -> dict:
    best = {a: max((r for r in rows if r["approach"] == a), key=lambda r: r["val_accuracy"], default=None)
            for a in ("classical", "deep")}
    return {"dataset": "digits", "split_sha256": SPLIT, "best_classical": best["classical"], "best_deep": best["deep"]}


def aliases(client: MlflowClient, name: str) -> dict[str, tuple[str, str]]:
    """{alias: (version, model tag)} of the registered model."""
    return {alias: (str(version), client.get_model_version(name, version).tags["model"])
            for alias, version in client.get_registered_model(name).aliases.items()}


def test_champion_and_best_of_each_approach_are_registered_once(mlflow_tmp, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "tiny-exp")
    client = MlflowClient()
    classical = row("hog-logreg", "classical", log_model_run("hog-logreg", "classical"), 0.97, 2_000)
    deep = row("lenet5", "deep", log_model_run("lenet5", "deep"), 0.95, 61_706)
    name, done, warnings = registry.register([classical, deep], summary_of([classical, deep]))
    assert name == "classic-vs-deep-digits" and warnings == []
    # the champion is the better VALIDATION accuracy; a model holding two roles has one version
    assert aliases(client, name) == {"champion": ("1", "hog-logreg"), "best-classical": ("1", "hog-logreg"),
                                     "best-deep": ("2", "lenet5")}
    assert done["champion"] == ("hog-logreg", "1", True) and done["best-classical"] == ("hog-logreg", "1", True)
    version = client.get_model_version(name, "1")
    assert version.run_id == classical["mlflow_run_id"]
    assert {k: version.tags[k] for k in ("approach", "split_sha256", "dvc_exp_name")} == {
        "approach": "classical", "split_sha256": SPLIT, "dvc_exp_name": "tiny-exp"}
    assert version.tags["git_commit"]
    assert "hog-logreg (v1, new)" in registry.describe(name, done)

    # the same winner from the same runs: no new version
    _, again, _ = registry.register([classical, deep], summary_of([classical, deep]))
    assert {alias: new for alias, (_, _, new) in again.items()} == dict.fromkeys(registry.ROLES, False)
    assert len(client.search_model_versions(f"name = '{name}'")) == 2

    # the deep model now wins on validation: the alias moves, the version is reused
    deep["val_accuracy"] = 0.99
    registry.register([classical, deep], summary_of([classical, deep]))
    assert aliases(client, name)["champion"] == ("2", "lenet5")
    assert len(client.search_model_versions(f"name = '{name}'")) == 2

    # a retrained classical model (a new run): a new version; no deep model: its alias goes
    retrained = row("hog-logreg", "classical", log_model_run("hog-logreg", "classical"), 0.98, 2_000)
    registry.register([retrained], summary_of([retrained]))
    assert aliases(client, name) == {"champion": ("3", "hog-logreg"), "best-classical": ("3", "hog-logreg")}


def test_ties_on_validation_go_to_the_smaller_model():
    summary = {"best_classical": {"model": "raw-knn", "val_accuracy": 0.9, "param_count": 900_000},
               "best_deep": {"model": "lenet5", "val_accuracy": 0.9, "param_count": 61_706}}
    assert registry.choose(summary) == {"best-classical": "raw-knn", "best-deep": "lenet5", "champion": "lenet5"}
    assert registry.registered_name("my data/set") == "classic-vs-deep-my-data-set"


def test_a_run_without_a_model_is_reported_not_registered(mlflow_tmp):
    with mlflow.start_run() as run:
        pass
    classical = row("hog-logreg", "classical", run.info.run_id, 0.97, 2_000)
    name, done, warnings = registry.register([classical], summary_of([classical]))
    assert done == {} and len(warnings) == 1
    assert warnings[0].startswith(f"not registered in {name}: hog-logreg as champion, best-classical (")
    with pytest.raises(Exception):
        MlflowClient().get_model_version_by_alias(name, "champion")

"""The classical models' MLflow runs, logged by ``compare`` from the files their stages wrote.

A ``train_classical`` stage imports neither MLflow nor matplotlib (about 2 s of a stage whose
fit often takes 0.1 s). ``compare`` -- one process that imports both anyway -- logs each
configured classical model as its own run, exactly what the stage used to log itself:

* tags ``approach``/``feature``/``classifier``/``model`` plus the shared ones of
  :func:`pipeline.tracking.stage_run` (``stage=train_classical``, ``dataset``,
  ``split_sha256``, ``git_commit``, ``pipeline_run``, ``dvc_exp_name``);
* params: what the stage trained with (``params`` of the model's ``.run.json``, search results
  as ``best.<name>``);
* metrics: every number of the metrics JSON (scores with their intervals, param_count, ...) and
  of the ``.run.json`` (fit_seconds, predict_images_per_s);
* artifacts: the confusion PNG (drawn here), the confusion and per-class CSVs, and the image-in
  pipeline ``artifacts/classical/<id>.skops`` as an MLflow sklearn model (``model``) whose
  signature takes an image batch (inferred from 2 test images);
* one run per extra seed of ``evaluation.repeats``, nested under the model's run.

Idempotent: each run is tagged ``result_sha256``, the SHA-256 of the model's metrics JSON,
``.run.json`` and model file. A FINISHED run with that tag is reused, so rerunning ``compare``
(or a ``dvc exp run`` that retrains nothing of a model) logs no duplicate. The CNN stages log
their own runs (live epoch metrics; TensorFlow's import dwarfs MLflow's); one whose stage could not
log is logged from its files by :mod:`pipeline.deep_runs`.

``compare``'s own run, ``comparison`` (:func:`log_comparison`, tagged ``result_sha256`` of its
files), gets its files as artifacts and becomes the parent of the model runs.
"""
from __future__ import annotations

import hashlib
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline import layout
from pipeline.io import read_json
from pipeline.model_logging import RESULT_TAG, files_digest, finished_run

# what the image-in pipeline needs at load time (its extractors import OpenCV / scikit-image);
# listed explicitly: MLflow's inference reloads the model in a subprocess to find them
REQUIREMENTS = ("scikit-learn", "skops", "numpy", "scipy", "opencv-python-headless", "scikit-image", "joblib",
                "tqdm")


model_path = layout.classical_model_path


def result_digest(model_id: str) -> str:
    """SHA-256 over the model's metrics JSON, ``.run.json`` and model file (each length-prefixed):
    it changes exactly when the stage wrote different results."""
    return files_digest((layout.scores_path("classical", model_id), layout.run_info_path("classical", model_id),
                         model_path(model_id)))


def _example_images(split_path: Path, n: int = 2):
    """The first ``n`` test images of the prepared split (the logged model's input example)."""
    from pipeline.io import load_split

    return load_split(split_path).x["test"][:n]


def _log_sklearn_model(model: Any, example: Any, trusted: Sequence[str]) -> None:
    """Log the image-in pipeline to the active run: skops format, an image signature, the feature
    extractors' code (``features/``) shipped with it so it loads outside this repository."""
    import mlflow
    from mlflow.models import infer_signature

    import features

    # The signature (uint8 image batch -> labels) documents the input, as for the CNNs. No
    # input_example: MLflow would reload and run every model it logs to check it (a third of the
    # logging time); tests/test_serve.py serves a logged model instead.
    mlflow.sklearn.log_model(
        model, name="model", serialization_format="skops", skops_trusted_types=list(trusted) or None,
        signature=infer_signature(example, model.predict(example)),
        pip_requirements=[f"{pkg}=={version(pkg)}" for pkg in REQUIREMENTS],
        code_paths=[str(Path(features.__file__).parent)],
    )


def _log_new_run(experiment_id: str, model_id: str, digest: str, example: Any, class_names: Sequence[str]) -> str:
    """Log one classical model's run from its files (see the module docstring); returns its id."""
    import mlflow
    import skops.io as sio

    from comparison.model_plot import confusion_png_bytes
    from comparison.predictions import read_file
    from models.classical import load_pipeline
    from models.evaluate import classification_metrics
    from pipeline.model_logging import log_model_files, log_seed_run
    from pipeline.store import flat_params
    from pipeline.tracking import common_tags

    scores = read_json(layout.scores_path("classical", model_id))
    info = read_json(layout.run_info_path("classical", model_id))
    identity = {key: str(info.get(key, "")) for key in ("approach", "feature", "classifier", "model")}
    tags = common_tags("train_classical", dataset=str(info.get("dataset", "")),
                       split_sha256=str(info.get("split_sha256", ""))) | identity | {RESULT_TAG: digest}
    path = model_path(model_id)
    model = load_pipeline(path)
    test = read_file(layout.predictions_path(model_id, "test"), layout.stage_for("classical", model_id))
    confusion = classification_metrics(test.y_true, test.y_pred, class_names)["confusion"]
    with tempfile.TemporaryDirectory() as tmp, \
            mlflow.start_run(experiment_id=experiment_id, run_name=f"classical-{model_id}", tags=tags) as run:
        mlflow.log_params(flat_params(info.get("params") or {}))
        png = Path(tmp) / "confusion" / f"{model_id}.png"  # logged under plots/confusion/, as on disk
        png.parent.mkdir()
        png.write_bytes(confusion_png_bytes(confusion, class_names, model_id, scores["test_accuracy"]))
        log_model_files(run.info.run_id, scores, {k: v for k, v in info.items() if k != "params"}, png)
        per_seed = scores.get("per_seed") or {}
        for i in range(1, len(per_seed.get("seed", ()))):
            log_seed_run(run, approach="classical", model_id=model_id,
                         scores={key: values[i] for key, values in per_seed.items()})
        _log_sklearn_model(model, example, sio.get_untrusted_types(file=path))
    return run.info.run_id


def log_classical_runs(experiment_id: str, rows: Sequence[Mapping[str, Any]], class_names: Sequence[str],
                       split_path: Path = layout.SPLIT) -> tuple[dict[str, str], int]:
    """Log (or find, when already logged from the same files) the MLflow run of every classical
    row; returns ``({model id: run id}, number of runs newly logged)``."""
    from mlflow.tracking import MlflowClient

    from pipeline.store import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri())
    run_ids, new, example = {}, 0, None
    for row in rows:
        if row["approach"] != "classical":
            continue
        model_id = row["model"]
        digest = result_digest(model_id)
        run_id = finished_run(client, experiment_id, model_id, digest)
        if run_id is None:
            if example is None:
                example = _example_images(split_path)
            run_id = _log_new_run(experiment_id, model_id, digest, example, class_names)
            new += 1
        run_ids[model_id] = run_id
    return run_ids, new


# --- what compare logs --------------------------------------------------------------------

def log_classical_rows(experiment: str, rows: list[dict], class_names: Sequence[str]) -> int:
    """Fill ``mlflow_run_id`` of the classical rows with their runs, logged now from their files
    unless already logged (:func:`log_classical_runs`); returns how many were logged now. A row
    whose ``.run.json`` names a run keeps it; one with no model file is left without a run."""
    from pipeline.tracking import experiment_id_of

    todo = [r for r in rows if r["approach"] == "classical" and not r["mlflow_run_id"]
            and model_path(r["model"]).is_file()]
    if not todo:
        return 0
    run_ids, new = log_classical_runs(experiment_id_of(experiment), todo, class_names)
    for row in rows:
        row["mlflow_run_id"] = run_ids.get(row["model"], row["mlflow_run_id"])
    return new


def comparison_digest(files: Sequence[Path]) -> str:
    """SHA-256 over compare's output files (names and bytes): the comparison run's ``result_sha256``."""
    digest = hashlib.sha256()
    for path in sorted(files):
        data = Path(path).read_bytes()
        digest.update(str(path).encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def log_comparison(cfg: Any, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
                    files: Sequence[Path]) -> tuple[str, int, list[str]]:
    """The ``comparison`` run, parent of the model runs it read; returns (run id, runs linked, warnings)."""
    import mlflow

    from comparison.leaderboard import name_list
    from pipeline.model_logging import link_to_parent
    from pipeline.store import log_metrics
    from pipeline.tracking import stage_run

    children = {r["model"]: r["mlflow_run_id"] for r in rows if r["mlflow_run_id"]}
    without_id = [r["model"] for r in rows if not r["mlflow_run_id"]]
    warnings = []
    if without_id:
        warnings.append(f"no mlflow_run_id in the .run.json of {name_list(without_id)}; "
                        f"not linked to the comparison run")
    tags = {"approach": "comparison", "model_runs": ",".join(children.values()), "winner": str(summary["winner"]),
            "selection": summary["selection"], RESULT_TAG: comparison_digest(files)}
    params = {"features.names": list(cfg.features.names), "classical.classifiers": list(cfg.classical.classifiers),
              "cnn.architectures": list(cfg.cnn.architectures)}
    with stage_run("compare", experiment=cfg.experiment, run_name="comparison", dataset=summary["dataset"],
                   split_sha256=summary["split_sha256"], tags=tags, params=params) as run:
        parent = run.info.run_id
        best_c, best_d = summary["best_classical"] or {}, summary["best_deep"] or {}
        numbers = {key: value for key, value in (summary["verdict"] or {}).items() if key != "winner"}
        if numbers:
            numbers["significant"] = int(numbers["significant"])  # a bool is not a metric
        log_metrics({"best_classical_accuracy": best_c.get("test_accuracy"),
                     "best_deep_accuracy": best_d.get("test_accuracy"),
                     # over the seeds (evaluation.repeats); None (not logged) when not recorded
                     "best_classical_accuracy_mean": best_c.get("test_accuracy_mean"),
                     "best_classical_accuracy_sd": best_c.get("test_accuracy_sd"),
                     "best_deep_accuracy_mean": best_d.get("test_accuracy_mean"),
                     "best_deep_accuracy_sd": best_d.get("test_accuracy_sd"),
                     "accuracy_difference": summary["accuracy_difference"],
                     "n_models": summary["n_models"], "verdict": numbers}, run_id=parent)
        for path in files:
            mlflow.log_artifact(str(path), artifact_path="plots" if path.parent == layout.PLOTS_DIR else None,
                                run_id=parent)
        n_linked, failed = link_to_parent(parent, {f"{model} ({rid})": rid for model, rid in children.items()})
    if failed:
        warnings.append(f"MLflow run(s) of {name_list([label for label, _ in failed], 4)} not found "
                        f"or not writable, not linked to the comparison run (first error: {failed[0][1]})")
    return parent, n_linked, warnings


def record_comparison(cfg: Any, rows: list[dict], summary: Mapping[str, Any], files: Sequence[Path], guard: Any,
                      n_logged: int | None, warn: Any, written: str = "") -> None:
    """:func:`log_comparison` and the registered champions (:mod:`pipeline.registry`), each call
    through ``guard`` (:class:`pipeline.store.Guard`): prints ``written`` and the comparison run
    on one line, then the registered models; ``warn`` is given the problems."""
    from pipeline import registry

    logged = guard(log_comparison, cfg, rows, summary, files)
    parts = [written] if written else []
    if logged is not None:
        run_id, n_linked, warnings = logged
        for message in warnings:
            warn(message)
        parts.append(f"MLflow run {run_id} (experiment {cfg.experiment!r}) is the parent of {n_linked} of "
                     f"{len(rows)} model runs ({n_logged} logged now from their files)")
    if parts:
        print("; ".join(parts))
    registered = guard(registry.register_chosen, rows, summary, warn)
    if registered is not None:
        print(registered)

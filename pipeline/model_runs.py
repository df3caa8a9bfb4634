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
  signature takes an image batch (input example: 2 test images);
* one run per extra seed of ``evaluation.repeats``, nested under the model's run.

Idempotent: each run is tagged ``result_sha256``, the SHA-256 of the model's metrics JSON,
``.run.json`` and model file. A FINISHED run with that tag is reused, so rerunning ``compare``
(or a ``dvc exp run`` that retrains nothing of a model) logs no duplicate. The CNN stages log
their own runs (live epoch metrics; TensorFlow's import dwarfs MLflow's).
"""
from __future__ import annotations

import hashlib
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline import results
from pipeline.io import read_json

RESULT_TAG = "result_sha256"
MODEL_DIR = Path("artifacts/classical")
# what the image-in pipeline needs at load time (its extractors import OpenCV / scikit-image);
# listed explicitly: MLflow's inference reloads the model in a subprocess to find them
REQUIREMENTS = ("scikit-learn", "skops", "numpy", "scipy", "opencv-python-headless", "scikit-image", "joblib",
                "tqdm")


def model_path(model_id: str) -> Path:
    return MODEL_DIR / f"{model_id}.skops"


def result_digest(model_id: str) -> str:
    """SHA-256 over the model's metrics JSON, ``.run.json`` and model file (each length-prefixed):
    it changes exactly when the stage wrote different results."""
    digest = hashlib.sha256()
    for path in (results.scores_path("classical", model_id), results.run_info_path("classical", model_id),
                 model_path(model_id)):
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _finished_run(client: Any, experiment_id: str, model_id: str, digest: str) -> str | None:
    """The id of a FINISHED run of ``model_id`` already logged from these exact files, if any."""
    query = (f"tags.{RESULT_TAG} = '{digest}' AND tags.model = '{model_id}' "
             f"AND attributes.status = 'FINISHED'")
    found = client.search_runs([experiment_id], query, max_results=1, order_by=["attributes.start_time DESC"])
    return found[0].info.run_id if found else None


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

    mlflow.sklearn.log_model(
        model, name="model", serialization_format="skops", skops_trusted_types=list(trusted) or None,
        signature=infer_signature(example, model.predict(example)), input_example=example,
        pip_requirements=[f"{pkg}=={version(pkg)}" for pkg in REQUIREMENTS],
        code_paths=[str(Path(features.__file__).parent)],
    )


def _log_new_run(experiment_id: str, model_id: str, digest: str, example: Any, class_names: Sequence[str]) -> str:
    """Log one classical model's run from its files (see the module docstring); returns its id."""
    import mlflow
    import skops.io as sio

    from models.classical import load_pipeline
    from models.evaluate import classification_metrics
    from pipeline.repeats import log_seed_run
    from pipeline.tracking import common_tags, flat_params

    scores = read_json(results.scores_path("classical", model_id))
    info = read_json(results.run_info_path("classical", model_id))
    identity = {key: str(info.get(key, "")) for key in ("approach", "feature", "classifier", "model")}
    tags = common_tags("train_classical", dataset=str(info.get("dataset", "")),
                       split_sha256=str(info.get("split_sha256", ""))) | identity | {RESULT_TAG: digest}
    path = model_path(model_id)
    model = load_pipeline(path)
    test = results.read_predictions(model_id, "test")
    confusion = classification_metrics(test.y_true, test.y_pred, class_names)["confusion"]
    with tempfile.TemporaryDirectory() as tmp, \
            mlflow.start_run(experiment_id=experiment_id, run_name=f"classical-{model_id}", tags=tags) as run:
        mlflow.log_params(flat_params(info.get("params") or {}))
        png = Path(tmp) / "confusion" / f"{model_id}.png"  # logged under plots/confusion/, as on disk
        png.parent.mkdir()
        png.write_bytes(results.confusion_png_bytes(confusion, class_names, model_id, scores["test_accuracy"]))
        results.log_model_files(run.info.run_id, scores, {k: v for k, v in info.items() if k != "params"}, png)
        per_seed = scores.get("per_seed") or {}
        for i in range(1, len(per_seed.get("seed", ()))):
            log_seed_run(run, approach="classical", model_id=model_id,
                         scores={key: values[i] for key, values in per_seed.items()})
        _log_sklearn_model(model, example, sio.get_untrusted_types(file=path))
    return run.info.run_id


def log_classical_runs(experiment_id: str, rows: Sequence[Mapping[str, Any]], class_names: Sequence[str],
                       split_path: Path = Path("data/prepared/split.npz")) -> tuple[dict[str, str], int]:
    """Log (or find, when already logged from the same files) the MLflow run of every classical
    row; returns ``({model id: run id}, number of runs newly logged)``."""
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri())
    run_ids, new, example = {}, 0, None
    for row in rows:
        if row["approach"] != "classical":
            continue
        model_id = row["model"]
        digest = result_digest(model_id)
        run_id = _finished_run(client, experiment_id, model_id, digest)
        if run_id is None:
            if example is None:
                example = _example_images(split_path)
            run_id = _log_new_run(experiment_id, model_id, digest, example, class_names)
            new += 1
        run_ids[model_id] = run_id
    return run_ids, new


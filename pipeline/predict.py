"""``cvd predict MODEL IMAGES...``: classify new image files with a trained model.

MODEL is a model id of the pipeline (``hog-logreg``: ``artifacts/classical/<id>.skops``, the
image-in scikit-learn pipeline; ``lenet5``: ``artifacts/cnn/<arch>.keras``), ``best`` (the
champion of the last ``compare``, as the registry's ``champion`` alias chooses it from
``reports/summary.json``), or an MLflow model URI (``models:/classic-vs-deep-digits@champion``,
``runs:/<id>/model``).

IMAGES are files or folders (searched recursively for PNG/JPEG/BMP/TIFF/GIF files), read exactly as
``prepare`` reads a folder dataset (:func:`pipeline.datasets.read_image_file`: OpenCV, the
split's channels, resized to the split's image size, deskewed if the split was); a CNN gets
them scaled to [0, 1] as in ``train_cnn`` (AlexNet's 63-pixel resize is a layer of the saved
model). The size, channels and class names are those of the prepared split the models were
trained on (``data/prepared/manifest.json``).

Output: a CSV (default ``predictions.csv``), one row per image -- ``path``, ``class`` (the
predicted class name), ``probability`` of that class (empty for the SVMs, which have none),
``score`` of that class and ``score_kind`` (``probability``: softmax or predict_proba;
``decision_function``: the SVMs' margins), ``top3`` (the three
best classes, ``name=score`` separated by ``; ``) -- written only when every image was
classified (:func:`pipeline.io.atomic_path`).
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.predicting import classical_scorer, keras_scorer
from pipeline import layout
from pipeline.config import Config
from pipeline.datasets import read_image_file
from pipeline.image_files import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS
from pipeline.errors import ConfigError, DataError
from pipeline.io import atomic_path, read_json

MANIFEST = layout.MANIFEST
SUMMARY = layout.SUMMARY
COLUMNS = ("path", "class", "probability", "score", "score_kind", "top3")
TOP_K = 3
PROGRESS_FROM = 200  # images: fewer are read in well under a second, a bar would only flash
SHOWN_ROWS = 20
BATCH_SIZE = 256


@dataclass(frozen=True)
class Model:
    """A loaded model: its name and ``scores(uint8 NHWC images) -> (class indices, scores, kind)``."""

    name: str
    scores: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, str]]


def configured_ids(cfg: Config) -> list[str]:
    """The model ids params.yaml configures: ``<feature>-<classifier>`` and the architectures."""
    return ([layout.model_id(f, c) for f in cfg.features.names for c in cfg.classical.classifiers]
            + list(cfg.cnn.architectures))


def champion(summary_path: Path = SUMMARY) -> str:
    """The model id ``best`` means: the registry's ``champion`` of the last ``compare`` -- of the
    best classical and the best deep model (each chosen on validation accuracy), the higher
    validation accuracy, then fewer parameters (:func:`comparison.leaderboard.choose`)."""
    from comparison.leaderboard import choose

    if not summary_path.is_file():
        raise DataError(f"{summary_path}: not found, so there is no best model yet; run `dvc repro` "
                        f"(or `cvd compare`) first")
    chosen = choose(read_json(summary_path)).get("champion")
    if not chosen:
        raise DataError(f"{summary_path}: names no best model; run `dvc repro` (or `cvd compare`) first")
    return chosen


def _load_uri(uri: str, n_classes: int) -> Model:
    """An MLflow model (``models:/``, ``runs:/``): its scikit-learn or Keras model underneath."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline.store import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    # MLflow's download progress bars and INFO lines are not this command's output
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        loaded = mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"MODEL {uri}: cannot be loaded from {tracking_uri()} ({first[:200]})") from None
    flavors = loaded.metadata.flavors
    raw = loaded.get_raw_model()
    if "keras" in flavors:
        return Model(uri, keras_scorer(raw, BATCH_SIZE))
    if "sklearn" in flavors:
        return Model(uri, classical_scorer(raw, n_classes))
    raise DataError(f"MODEL {uri}: a {', '.join(f for f in flavors if f != 'python_function')} model; "
                    f"cvd predict runs this project's scikit-learn and Keras models")


def resolve(cfg: Config, name: str) -> tuple[str, str | Path]:
    """``(label, file or MLflow URI)`` of the model ``name`` (an id, ``best`` or a URI), checked
    without loading it (cheap: done before any image is read).

    Raises:
        ConfigError: ``name`` is none of those.
        DataError: its file is missing (not trained yet), or ``best`` without a comparison.
    """
    if ":/" in name:
        return name, name
    model_id = champion() if name == "best" else name
    import features
    from models import architectures, classifiers

    feature, classifier = layout.split_model_id(model_id)
    if model_id in architectures.names():
        path, train = layout.cnn_model_path(model_id), f"cvd train-cnn --arch {model_id}"
    elif feature in features.extractor_names() and classifier in classifiers.names():
        path = layout.classical_model_path(model_id)
        train = f"cvd train-classical --feature {feature} --classifier {classifier}"
    else:
        raise ConfigError(f"MODEL {name!r}: unknown; use a model id ({', '.join(configured_ids(cfg))}), "
                          f"`best` or an MLflow URI such as models:/<name>@champion")
    if not path.is_file():
        raise DataError(f"MODEL {model_id}: not trained, {path} not found; run `dvc repro` (or `{train}`) first")
    return (f"{model_id} (best)" if name == "best" else model_id), path


def load_model(label: str, source: str | Path, n_classes: int) -> Model:
    """The model :func:`resolve` found, loaded: the image-in scikit-learn pipeline
    (``models.classical.load_pipeline``), the Keras model, or an MLflow model."""
    if isinstance(source, str):
        return _load_uri(source, n_classes)
    if source.suffix == ".keras":
        import keras

        try:
            return Model(label, keras_scorer(keras.saving.load_model(source), BATCH_SIZE))
        except (OSError, ValueError) as exc:
            raise DataError(f"{source}: cannot be loaded ({' '.join(str(exc).split())[:200]}); retrain it") from None
    from models.classical import load_pipeline

    return Model(label, classical_scorer(load_pipeline(source), n_classes))


def image_files(paths: Sequence[str | Path]) -> list[Path]:
    """The image files named or found (recursively, sorted) in the folders named, in argument order."""
    if not paths:
        raise ConfigError("IMAGES: give at least one image file or folder")
    files: list[Path] = []
    for arg in map(Path, paths):
        if arg.is_dir():
            found = sorted(p for p in arg.rglob("*")  # broken links too, so that the reader names them
                           if (p.is_file() or p.is_symlink()) and p.suffix.lower() in IMAGE_EXTENSIONS
                           and not any(part.startswith(".") for part in p.relative_to(arg).parts))
            if not found:
                raise DataError(f"{arg}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            files += found
        elif arg.is_file():
            files.append(arg)
        else:
            raise DataError(f"{arg}: no such image file or folder")
    return files


def read_images(files: Sequence[Path], image_size: int, channels: int,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The files as one uint8 ``(n, size, size, channels)`` batch, as ``prepare`` reads them
    (``data.max_pixels`` checked from each header); a progress bar on stderr for large batches."""
    from tqdm import tqdm

    out = np.empty((len(files), image_size, image_size, channels), dtype=np.uint8)
    for i, path in enumerate(tqdm(files, desc="reading images", unit="img", file=sys.stderr,
                                  disable=len(files) < PROGRESS_FROM, leave=False)):
        out[i] = read_image_file(path, image_size, channels, max_pixels)
    return out


def predict(model: Model, images: np.ndarray, class_names: Sequence[str], files: Sequence[Path]) -> list[dict]:
    """One row per image: path, predicted class name, its probability (SVMs: none) and score, the
    score kind and the top 3."""
    y_pred, scores, kind = model.scores(images)
    if scores.shape != (len(images), len(class_names)):
        raise DataError(f"MODEL {model.name}: gives {scores.shape[1]} class scores, but the prepared split has "
                        f"{len(class_names)} classes ({MANIFEST}); was it trained on another dataset?")
    rows = []
    for path, label, row in zip(files, y_pred, scores):
        top = np.argsort(-row, kind="stable")[:TOP_K]
        score = f"{row[int(label)]:.6g}"
        rows.append({"path": str(path), "class": class_names[int(label)],
                     "probability": score if kind == "probability" else "", "score": score,
                     "score_kind": kind, "top3": "; ".join(f"{class_names[i]}={row[i]:.4g}" for i in top)})
    return rows


def write_rows(dest: str | Path, rows: Sequence[dict]) -> None:
    """The CSV, renamed into place only when complete."""
    import csv

    with atomic_path(dest, suffix=".csv") as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def table(rows: Sequence[dict], limit: int = SHOWN_ROWS) -> str:
    """The first ``limit`` rows as a plain-text table, and how many more there are."""
    import pandas as pd

    shown = pd.DataFrame(list(rows[:limit]), columns=list(COLUMNS))
    text = shown.to_string(index=False)
    return text + (f"\n... and {len(rows) - limit} more" if len(rows) > limit else "")


def run(cfg: Config, model_name: str, paths: Sequence[str | Path], out: str | Path = "predictions.csv") -> list[dict]:
    """Classify the images of ``paths`` with ``model_name``; write ``out``; return its rows."""
    if not MANIFEST.is_file():
        raise DataError(f"{MANIFEST}: not found, so no model has been trained here; run `dvc repro` first")
    manifest = read_json(MANIFEST)
    height, _, channels = manifest["image_shape"]
    class_names = [str(c) for c in manifest["class_names"]]
    if len(set(manifest["image_shape"][:2])) != 1:
        raise DataError(f"{MANIFEST}: image_shape {manifest['image_shape']} is not square; rerun `cvd prepare`")
    label, source = resolve(cfg, model_name)
    files = image_files(paths)
    images = read_images(files, height, channels, cfg.data.max_pixels)
    if manifest.get("deskew"):  # as prepare deskewed the images the models learned from
        from pipeline.preprocessing import deskew_batch

        images = deskew_batch(images)
    model = load_model(label, source, len(class_names))
    rows = predict(model, images, class_names, files)
    write_rows(out, rows)
    return rows

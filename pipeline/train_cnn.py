"""DVC stage ``train_cnn@<arch>``: one CNN of :mod:`models.architectures` on prepare's split.

Reads only ``data/prepared/split.npz`` -- the very images the classical side extracts its
features from -- scales them to float32 in [0, 1], builds ``cnn.<arch>``'s network and
trains it with :mod:`models.training` (which documents devices, mixed precision, multi-GPU
and determinism), validating every epoch; only then does it touch test. The softmax
probabilities of the test pass that is timed, and of one pass over validation, are the
per-image predictions. Outputs, besides the shared ones of :mod:`pipeline.results`
(per-image predictions included):

* ``artifacts/cnn/<arch>.keras``  the trained model, inference only (no optimizer state).
  It expects float32 images scaled to [0, 1] (``uint8 / 255``), shape ``(N, H, W, C)`` of
  the prepared split, and returns class probabilities.
* ``plots/history/<arch>.csv``     one row per epoch: loss, accuracy, val_loss,
  val_accuracy, learning_rate (at the start of the epoch), epoch_seconds.

Every CNN is stochastic: with ``evaluation.repeats`` > 1 the network is then rebuilt and
trained again with each extra seed (:func:`train_extra_seeds`); those only add scores to the
metrics and a nested MLflow run each (:mod:`comparison.repeats`).

MLflow (explicit logging, no autolog): the per-epoch values as step metrics named
``history.<column>`` (step = epoch, from 1) -- prefixed so that the run's plain
``val_accuracy`` stays the value written to ``metrics/cnn/<arch>.json`` --, the history CSV,
the shared metrics/plots, the model (``mlflow.keras`` flavour), and the devices as tag
``device`` and params ``gpu_count``/``gpu_names``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from models import architectures, training
from pipeline.config import Config, component_section
from pipeline.errors import ConfigError, DataError
from pipeline import layout
from pipeline.io import Split, atomic_path, write_csv

PREDICT_REPEATS = 2  # throughput = the faster of two full passes over test, after a warm-up


def runtime(cfg: Config, devices: training.Devices):
    """:func:`models.training.runtime` with params.yaml's seed and cnn settings."""
    return training.runtime(devices, seed=cfg.seed, precision=cfg.cnn.mixed_precision,
                            deterministic=cfg.cnn.deterministic)


def build_model(cfg: Config, arch: str, input_shape: tuple[int, ...], num_classes: int, *,
                steps_per_epoch: int, rt: training.Runtime) -> Any:
    """The compiled model of ``arch`` as ``cfg`` configures it (``cnn.<arch>``); inside ``rt``."""
    settings = cfg.cnn.training(arch)
    with rt.scope():
        with component_section(cfg, f"cnn.{arch}"):
            model = architectures.get(arch).build(tuple(input_shape), num_classes, **cfg.cnn.section(arch).arguments())
        return training.compile_model(model, learning_rate=settings.learning_rate, lr_schedule=cfg.cnn.lr_schedule,
                                      epochs=settings.epochs, steps_per_epoch=steps_per_epoch)


def check_settings(cfg: Config, arch: str) -> None:
    """params.yaml ``cnn.<arch>`` and the training vocabulary, checked before any data is read."""
    architecture = architectures.get(arch)
    arguments = cfg.cnn.section(arch).arguments()
    unknown = sorted(set(arguments) - set(architecture.parameters()))
    if unknown:
        allowed = (*architecture.parameters(), "train")
        raise ConfigError(f"{cfg.source}: unknown key 'cnn.{arch}.{unknown[0]}'; allowed: {', '.join(allowed)}")
    with component_section(cfg, f"cnn.{arch}"):
        architecture.layers(**arguments)
    with component_section(cfg, "cnn"):
        training.choose_precision(cfg.cnn.mixed_precision, gpu_count=0)
        training.check_lr_schedule(cfg.cnn.lr_schedule)


def fit_model(cfg: Config, arch: str, model: Any, x_train, y_train, x_val, y_val, **kwargs: Any) -> training.FitResult:
    """:func:`models.training.fit` with params.yaml's cnn settings for ``arch``."""
    settings = cfg.cnn.training(arch)
    return training.fit(model, x_train, y_train, x_val, y_val, epochs=settings.epochs, batch_size=settings.batch_size,
                        patience=cfg.cnn.patience, lr_schedule=cfg.cnn.lr_schedule, monitor=cfg.cnn.monitor,
                        augmentation=cfg.cnn.augment.model_dump(), seed=kwargs.pop("seed", cfg.seed), **kwargs)


def train_extra_seeds(cfg: Config, arch: str, x: dict, split: Split, rt: training.Runtime, run: Any) -> list[dict]:
    """Rebuild and train ``arch`` with each extra seed of ``evaluation.repeats`` (Keras' global
    seed set to it, inside the runtime ``rt`` of the first seed, so op determinism stays on) and
    score it; each is logged as an MLflow run nested under ``run``. Their scores, in seed order."""
    import keras

    from comparison.repeats import seed_scores, seeds
    from pipeline.tracking import log_seed_run

    scores = []
    batch_size = cfg.cnn.training(arch).batch_size
    for seed in seeds(cfg.seed, cfg.evaluation.repeats)[1:]:
        keras.utils.set_random_seed(seed)
        model = build_model(cfg, arch, split.image_shape, split.num_classes,
                            steps_per_epoch=math.ceil(len(x["train"]) / batch_size), rt=rt)
        fit = fit_model(cfg, arch, model, x["train"], split.y["train"], x["val"], split.y["val"], seed=seed)
        y_pred = np.argmax(model.predict(x["test"], batch_size=batch_size, verbose=0), axis=1)
        scores.append(seed_scores(seed, split.y["test"], y_pred, fit.best_val_accuracy, split.num_classes))
        log_seed_run(run, approach="deep", model_id=arch, scores=scores[-1])
        print(f"{arch} seed {seed}: test accuracy {scores[-1]['test_accuracy']:.4f}, {fit.epochs_run} epochs")
    return scores


def _check_split(split: Split) -> None:
    for name in ("train", "val", "test"):
        x = split.x[name]
        if x.ndim != 4 or x.dtype != np.uint8:
            raise DataError(f"{layout.SPLIT}: x_{name} must be uint8 NHWC images; got "
                            f"{x.dtype} {x.shape}; rerun `cvd prepare`")
        if len(x) == 0:
            raise DataError(f"{layout.SPLIT}: the {name} split is empty; add images or change "
                            "data.val_fraction / data.test_fraction")


def _log_keras_model(run: Any, model: Any, example: np.ndarray, probabilities: np.ndarray) -> None:
    """Log the inference model to ``run`` as an MLflow Keras model (pyfunc-loadable)."""
    import keras
    import mlflow.keras
    from mlflow.models import Model, infer_signature

    requirements = [f"keras=={keras.__version__}"]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        requirements.append(f"tensorflow=={tf.__version__}")
    # Explicit requirements: MLflow's inference of them reloads the model in a subprocess
    # (several seconds of TensorFlow start-up) and would find the same two packages.
    # No input_example: mlflow.keras.save_model writes it before creating the model folder
    # and fails with FileNotFoundError (mlflow/mlflow#16183, still in MLflow 3.17); the
    # signature (float32 tensor (-1, H, W, C) -> (-1, classes)) documents the input instead.
    # Model.log is what mlflow.keras.log_model calls, with the run_id that one lacks.
    Model.log(artifact_path=None, name="model", flavor=mlflow.keras, run_id=run.info.run_id,
              model=training.inference_model(model), signature=infer_signature(example, probabilities),
              pip_requirements=requirements)


def run(cfg: Config, arch: str) -> dict:
    import keras
    import mlflow

    from models.cnn import count_params
    from models.evaluate import time_predict
    from pipeline.io import load_split
    from comparison.predictions import Predictions
    from pipeline.results import record_model
    from pipeline.tracking import log_metrics, stage_run

    architectures.check_name(arch)
    check_settings(cfg, arch)
    settings = cfg.cnn.training(arch)
    split = load_split()
    _check_split(split)
    x = {name: training.scale_images(split.x[name]) for name in ("train", "val", "test")}
    devices = training.detect_devices()
    backend = keras.backend.backend()
    batch_size = settings.batch_size

    with runtime(cfg, devices) as rt:
        # Built before the MLflow run opens, so a bad cnn.<arch> parameter leaves no failed run.
        model = build_model(cfg, arch, split.image_shape, split.num_classes,
                            steps_per_epoch=math.ceil(len(x["train"]) / batch_size), rt=rt)
        counts = count_params(model)
        tags = {"approach": "deep", "arch": arch, "model": arch, "device": devices.label, "backend": backend}
        params = {"arch": arch, "seed": cfg.seed, "epochs": settings.epochs, "batch_size": batch_size,
                  "learning_rate": settings.learning_rate, "patience": cfg.cnn.patience, "monitor": cfg.cnn.monitor,
                  "lr_schedule": cfg.cnn.lr_schedule, "mixed_precision": cfg.cnn.mixed_precision,
                  "deterministic": cfg.cnn.deterministic, "precision_policy": rt.precision,
                  **{f"augment.{k}": v for k, v in cfg.cnn.augment.model_dump().items()},
                  "gpu_count": devices.gpu_count, "gpu_names": ", ".join(devices.gpu_names) or "none",
                  **cfg.cnn.section(arch).arguments()}
        with stage_run("train_cnn", experiment=cfg.experiment, run_name=f"deep-{arch}", dataset=split.dataset,
                       split_sha256=split.sha256, tags=tags, params=params) as mlflow_run:
            run_id = mlflow_run.info.run_id

            def log_epoch(row: dict) -> None:
                history = {k: v for k, v in row.items() if k != "epoch"}
                log_metrics({"history": history}, step=row["epoch"], run_id=run_id)

            fit = fit_model(cfg, arch, model, x["train"], split.y["train"], x["val"], split.y["val"], on_epoch=log_epoch)
            write_csv(layout.history_path(arch), fit.history, training.HISTORY_COLUMNS)
            mlflow.log_artifact(str(layout.history_path(arch)), artifact_path="plots", run_id=run_id)

            dest = layout.cnn_model_path(arch)
            with atomic_path(dest, suffix=".keras") as tmp:
                training.inference_model(model).save(tmp)

            def predict(images: np.ndarray) -> np.ndarray:
                return model.predict(images, batch_size=batch_size, verbose=0)

            predict(x["test"][:batch_size])  # warm-up: tracing is not throughput
            probabilities, images_per_s = time_predict(predict, x["test"], repeats=PREDICT_REPEATS)
            parts = {"test": probabilities, "val": predict(x["val"])}  # softmax outputs, one pass each
            test, val = (Predictions.of(split.y[name], np.argmax(parts[name], axis=1),
                                        np.asarray(parts[name], dtype=np.float32), "probability")
                         for name in ("test", "val"))
            repeats = train_extra_seeds(cfg, arch, x, split, rt, mlflow_run)
            result = record_model(
                run=mlflow_run, approach="deep", model_id=arch, test=test, val=val,
                class_names=split.class_names, param_count=counts["total"], model_path=dest,
                seed=cfg.seed, confidence=cfg.evaluation.confidence,
                bootstrap_resamples=cfg.evaluation.bootstrap_resamples,
                extra_scores={"trainable_params": int(counts["trainable"]), "epochs_run": fit.epochs_run,
                              "best_epoch": fit.best_epoch, "val_accuracy": round(fit.best_val_accuracy, 6)},
                repeats=repeats,
                run_info={"approach": "deep", "arch": arch, "dataset": split.dataset,
                          "split_sha256": split.sha256, "device": devices.label, "backend": backend,
                          "gpu_count": devices.gpu_count, "mixed_precision": rt.mixed_precision,
                          "fit_seconds": round(fit.fit_seconds, 4),
                          "epoch_seconds": round(float(np.mean(fit.epoch_seconds)), 4),
                          "predict_images_per_s": round(images_per_s, 1)},
            )
            _log_keras_model(mlflow_run, model, x["test"][:2], probabilities[:2])
    spread = (f" (mean {result['test_accuracy_mean']:.4f} ± {result['test_accuracy_sd']:.4f} over "
              f"{result['repeats']} seeds)" if result["repeats"] > 1 else "")
    print(f"{arch}: test accuracy {result['test_accuracy']:.4f}{spread}, macro-F1 {result['macro_f1']:.4f}, "
          f"{result['param_count']:,} params, {fit.epochs_run} epochs (best {fit.best_epoch}), "
          f"fit {fit.fit_seconds:.2f}s on {devices.label}")
    return result

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
trained again with each extra seed (:func:`pipeline.cnn_training.train_extra_seeds`); those only add scores to the
metrics and a nested MLflow run each (:mod:`comparison.repeats`).

MLflow (explicit logging, no autolog): the per-epoch values as step metrics named
``history.<column>`` (step = epoch, from 1) -- prefixed so that the run's plain
``val_accuracy`` stays the value written to ``metrics/cnn/<arch>.json`` --, the history CSV,
the shared metrics/plots, the model (``mlflow.keras`` flavour), and the devices as tag
``device`` and params ``gpu_count``/``gpu_names``.
"""
from __future__ import annotations

import math

import numpy as np

from models import architectures, training
from pipeline import layout
from pipeline.cnn_training import build_model, check_settings, fit_model, runtime, train_extra_seeds
from pipeline.config import Config
from pipeline.errors import DataError
from pipeline.io import Split, atomic_path, write_csv

PREDICT_REPEATS = 2  # throughput = the faster of two full passes over test, after a warm-up


def _check_split(split: Split) -> None:
    for name in ("train", "val", "test"):
        x = split.x[name]
        if x.ndim != 4 or x.dtype != np.uint8:
            raise DataError(f"{layout.SPLIT}: x_{name} must be uint8 NHWC images; got "
                            f"{x.dtype} {x.shape}; rerun `cvd prepare`")
        if len(x) == 0:
            raise DataError(f"{layout.SPLIT}: the {name} split is empty; add images or change "
                            "data.val_fraction / data.test_fraction")


def run(cfg: Config, arch: str) -> dict:
    import keras
    import mlflow

    from models.cnn import count_params
    from models.evaluate import time_predict
    from pipeline.io import load_split
    from comparison.predictions import Predictions
    from pipeline.results import record_model
    from pipeline.stale_runs import end_stale_runs
    from pipeline.tracking import log_keras_model, log_metrics, stage_run, tracking_uri

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
        end_stale_runs(tracking_uri())
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
            log_keras_model(mlflow_run, model, x["test"][:2], probabilities[:2])
    spread = (f" (mean {result['test_accuracy_mean']:.4f} ± {result['test_accuracy_sd']:.4f} over "
              f"{result['repeats']} seeds)" if result["repeats"] > 1 else "")
    print(f"{arch}: test accuracy {result['test_accuracy']:.4f}{spread}, macro-F1 {result['macro_f1']:.4f}, "
          f"{result['param_count']:,} params, {fit.epochs_run} epochs (best {fit.best_epoch}), "
          f"fit {fit.fit_seconds:.2f}s on {devices.label}")
    return result

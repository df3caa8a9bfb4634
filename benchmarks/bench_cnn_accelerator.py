"""The Fashion-MNIST CNN stages on whatever accelerator Keras sees (or the CPU), without DVC/MLflow.

Builds exactly the split ``prepare`` builds from params.yaml (``pipeline.splitting.split_pools``
+ ``pipeline.preprocessing.preprocess``: same seed, same 51,000 / 9,000 / 10,000 images, same size) and trains
each architecture through ``train_cnn``'s own ``runtime`` / ``build_model`` / ``fit_model``
helpers, so the numbers are the stage's, minus MLflow logging and the model file. Meant for a
GPU machine that has Keras' JAX backend but neither TensorFlow, DVC nor MLflow:

    KERAS_BACKEND=jax python benchmarks/bench_cnn_accelerator.py --data DIR [-S cnn.alexnet.train.epochs=15 ...]

Prints one table row per architecture: device, precision policy, epochs run (early stopping
on validation loss), median epoch seconds (first epoch, which compiles, shown apart), fit
seconds, test accuracy with its Wilson interval, and test images/s. The CPU rows of README's
"On a GPU" table come from the same script on the 2-core machine.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _common import parse_overrides, prepared_split
from pipeline.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]


def print_epoch(row: dict) -> None:
    print("  epoch " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "epoch") + f" ({row['epoch']})",
          file=sys.stderr, flush=True)


def train_one(cfg, arch: str, x: dict, y: dict, num_classes: int, devices, epoch_log: bool = False) -> dict:
    from models import training
    from models.statistics import wilson_interval
    from pipeline.cnn_training import build_model, fit_model, runtime

    settings = cfg.cnn.training(arch)
    xs = {name: training.scale_images(v) for name, v in x.items()}
    with runtime(cfg, devices) as rt:
        model = build_model(cfg, arch, xs["train"].shape[1:], num_classes,
                            steps_per_epoch=math.ceil(len(xs["train"]) / settings.batch_size), rt=rt)
        fit = fit_model(cfg, arch, model, xs["train"], y["train"], xs["val"], y["val"], verbose=0,
                        on_epoch=print_epoch if epoch_log else None)
        model.predict(xs["test"][: settings.batch_size], batch_size=settings.batch_size, verbose=0)
        start = time.perf_counter()
        probabilities = model.predict(xs["test"], batch_size=settings.batch_size, verbose=0)
        predict_seconds = time.perf_counter() - start
    correct = int(np.sum(np.argmax(probabilities, axis=1) == y["test"]))
    n = len(y["test"])
    low, high = wilson_interval(correct, n, cfg.evaluation.confidence)
    epochs = fit.epoch_seconds
    return {"arch": arch, "precision": rt.precision, "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch,
            "first_epoch_s": epochs[0], "median_epoch_s": statistics.median(epochs[1:] or epochs),
            "fit_s": fit.fit_seconds, "accuracy": correct / n, "low": low, "high": high,
            "images_per_s": n / max(predict_seconds, 1e-9), "batch_size": settings.batch_size,
            "max_epochs": settings.epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder with Fashion-MNIST's four IDX .gz files")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--arch", action="append", help="architecture(s); default: params.yaml cnn.architectures")
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="params override key=value")
    parser.add_argument("--epoch-log", action="store_true", help="print each epoch's history row to stderr")
    args = parser.parse_args()

    import keras

    from models import training

    overrides = {"data.dataset": args.dataset, "data.path": args.data} | parse_overrides(args.overrides)
    cfg = load_config(REPO_ROOT / "params.yaml", overrides)
    start = time.perf_counter()
    x, y, num_classes = prepared_split(cfg)
    devices = training.detect_devices()
    print(f"{args.dataset}: train {len(y['train']):,} / val {len(y['val']):,} / test {len(y['test']):,} images "
          f"{x['train'].shape[1:]}, prepared in {time.perf_counter() - start:.1f} s; Keras {keras.__version__} "
          f"({keras.backend.backend()}), device {devices.label}, {os.cpu_count()} CPU cores; "
          f"overrides {overrides}\n", flush=True)
    print("| arch | device | precision | batch | epochs run / max (best) | 1st epoch s | median epoch s "
          "| fit s | test accuracy [95 % CI] | test images/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|---:|", flush=True)
    for arch in args.arch or cfg.cnn.architectures:
        r = train_one(cfg, arch, x, y, num_classes, devices, epoch_log=args.epoch_log)
        print(f"| {arch} | {devices.label} | {r['precision']} | {r['batch_size']} | {r['epochs_run']} / "
              f"{r['max_epochs']} ({r['best_epoch']}) | {r['first_epoch_s']:.2f} | {r['median_epoch_s']:.2f} "
              f"| {r['fit_s']:.1f} | {100 * r['accuracy']:.2f} % [{100 * r['low']:.2f}, {100 * r['high']:.2f}] "
              f"| {r['images_per_s']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()

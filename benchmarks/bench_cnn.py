"""CNN benchmark: the pipeline's LeNet-5 training against a plain Keras script, and its accuracy.

Part 1 (always): median epoch seconds of LeNet-5 trained through ``pipeline.train_cnn``'s
own helpers (``runtime`` + ``build_model`` + ``fit_model`` over :mod:`models.training`:
seeding, op determinism, dtype policy, early stopping, LR schedule, per-epoch recorder)
against a minimal ``keras.Sequential`` LeNet-5 with the same data, batch size, optimizer and validation
data, in the same process. Target: pipeline / plain <= 1.05.

Part 2 (``--full``): the real ``prepare`` + ``train_cnn`` stages on the full Fashion-MNIST
(train 54,000 / val 6,000 / test 10,000, native 28x28, up to 30 epochs with early
stopping) in a temporary directory with its own MLflow store. Target: test accuracy
>= 90.5 %.

Data: ../shared/datasets/fashion-mnist next to the repository (IDX .gz, read with the
product's ``pipeline.datasets.read_idx``); without it part 1 falls back to generated
images (timings only) and part 2 is skipped.

    python benchmarks/bench_cnn.py [--epochs 3] [--rounds 1] [--train-images 60000] [--batch-size N] [--full]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.config import Config, load_config
from pipeline.datasets import read_idx

REPO_ROOT = Path(__file__).resolve().parents[1]
FASHION = REPO_ROOT.parent / "shared" / "datasets" / "fashion-mnist"


def load_fashion(n_train: int, seed: int) -> tuple[dict[str, np.ndarray], str]:
    """Train/validation images (uint8 N x 28 x 28 x 1) and labels; generated when absent."""
    if (FASHION / "train-images-idx3-ubyte.gz").is_file():
        x = read_idx(FASHION / "train-images-idx3-ubyte.gz", 3)[..., None]
        y = read_idx(FASHION / "train-labels-idx1-ubyte.gz", 1).astype(np.int64)
        xv = read_idx(FASHION / "t10k-images-idx3-ubyte.gz", 3)[..., None]
        yv = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz", 1).astype(np.int64)
        source = "Fashion-MNIST (validation = its 10,000 test images)"
    else:
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 256, (60_000, 28, 28, 1), dtype=np.uint8)
        y = rng.integers(0, 10, 60_000).astype(np.int64)
        xv, yv = x[:10_000], y[:10_000]
        source = "generated noise (Fashion-MNIST not found; timings only)"
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_val": xv, "y_val": yv}, source


def bench_config(epochs: int, batch_size: int | None) -> Config:
    overrides = {"cnn.epochs": epochs, "cnn.patience": epochs}  # every epoch runs (no early stop)
    if batch_size:
        overrides["cnn.batch_size"] = batch_size
    return load_config(REPO_ROOT / "params.yaml", overrides)


def pipeline_epochs(cfg: Config, data: dict) -> list[float]:
    """Epoch seconds of LeNet-5 through the stage's own runtime/build/fit helpers."""
    from models.training import detect_devices
    from pipeline.cnn_training import build_model, fit_model, runtime

    settings = cfg.cnn.training("lenet5")
    x_train, x_val = data["xs_train"], data["xs_val"]
    with runtime(cfg, detect_devices()) as rt:
        model = build_model(cfg, "lenet5", x_train.shape[1:], 10,
                            steps_per_epoch=-(-len(x_train) // settings.batch_size), rt=rt)
        fit = fit_model(cfg, "lenet5", model, x_train, data["y_train"], x_val, data["y_val"], verbose=0)
    return fit.epoch_seconds


def plain_epochs(cfg: Config, data: dict) -> list[float]:
    """Epoch seconds of the textbook script: Sequential LeNet-5, compile, fit."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(cfg.seed)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.ZeroPadding2D(2),
        layers.Conv2D(6, 5, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 5, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dense(84, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(cfg.cnn.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    model.fit(data["xs_train"], data["y_train"], batch_size=cfg.cnn.batch_size, epochs=cfg.cnn.epochs,
              validation_data=(data["xs_val"], data["y_val"]), shuffle=True, callbacks=[Timer()], verbose=0)
    return seconds


def part_overhead(args: argparse.Namespace) -> None:
    import keras

    from models.training import scale_images

    cfg = bench_config(args.epochs, args.batch_size)
    data, source = load_fashion(args.train_images, cfg.seed)
    data["xs_train"], data["xs_val"] = scale_images(data["x_train"]), scale_images(data["x_val"])
    n = len(data["y_train"])
    print(f"## LeNet-5 epoch time: pipeline vs plain Keras\n\n{source}: {n:,} training images, "
          f"{len(data['y_val']):,} validation images, batch {cfg.cnn.batch_size}, {cfg.cnn.epochs} epochs per side, "
          f"Keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} CPU cores.\n", flush=True)
    # Rounds alternate plain, pipeline, plain, pipeline ... so that load from other processes
    # hits both alike. Caveat: the pipeline switches on TensorFlow's op determinism
    # (cnn.deterministic) for the rest of the process, so only round 1's plain run has it off.
    plain: list[float] = []
    piped: list[float] = []
    for _ in range(args.rounds):
        plain += plain_epochs(cfg, data)
        piped += pipeline_epochs(cfg, data)
    print("| training | epochs | epoch seconds | median epoch s | median after 1st epoch of a run | images/s |")
    print("|---|---:|---|---:|---:|---:|")
    e = cfg.cnn.epochs
    for name, secs in (("plain Keras script (Sequential LeNet-5)", plain),
                       ("pipeline (cnn_training.runtime + build_model + fit_model)", piped)):
        med = statistics.median(secs)
        steady = [s for i, s in enumerate(secs) if i % e] or secs
        print(f"| {name} | {len(secs)} | {', '.join(f'{s:.2f}' for s in secs)} | {med:.2f} "
              f"| {statistics.median(steady):.2f} | {n / med:,.0f} |")
    ratio = statistics.median(piped) / statistics.median(plain)
    print(f"\npipeline / plain (median epoch): **{ratio:.3f}** (target <= 1.05: "
          f"{'met' if ratio <= 1.05 else 'NOT met'}); load average during the run: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}\n", flush=True)


def part_full(args: argparse.Namespace) -> None:
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        print(f"## Full Fashion-MNIST\n\nskipped: {FASHION} not found\n")
        return
    import csv

    from pipeline import prepare, train_cnn

    overrides = {"data.dataset": "fashion_mnist", "data.path": str(FASHION), "data.image_size": None,
                 "data.val_fraction": 0.1, "data.limit_per_class": None, "cnn.epochs": args.full_epochs,
                 "mlflow.experiment": "benchmark-cnn"}
    cfg = load_config(REPO_ROOT / "params.yaml", overrides)
    with tempfile.TemporaryDirectory(prefix="cvd-bench-cnn-") as tmp:
        os.chdir(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        start = time.perf_counter()
        manifest = prepare.run(cfg)
        result = train_cnn.run(cfg, "lenet5")
        total = time.perf_counter() - start
        with open("plots/history/lenet5.csv", newline="") as fh:
            history = list(csv.DictReader(fh))
    to_best = sum(float(r["epoch_seconds"]) for r in history[: result["best_epoch"]])
    counts = manifest["counts"]
    target = result["test_accuracy"] >= 0.905
    print(f"## LeNet-5 on full Fashion-MNIST (real prepare + train_cnn stages)\n\n"
          f"train {counts['train']:,} / val {counts['val']:,} / test {counts['test']:,}, 28x28x1, "
          f"batch {cfg.cnn.batch_size}, Adam {cfg.cnn.learning_rate}, lr_schedule {cfg.cnn.lr_schedule}, "
          f"patience {cfg.cnn.patience}, max {cfg.cnn.epochs} epochs, device {result['device']}.\n")
    print("| test accuracy | macro-F1 | val accuracy | epochs run | best epoch | fit s | s to best epoch "
          "| median epoch s | predict images/s | stage total s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {result['test_accuracy']:.4f} | {result['macro_f1']:.4f} | {result['val_accuracy']:.4f} "
          f"| {result['epochs_run']} | {result['best_epoch']} | {result['fit_seconds']:.1f} | {to_best:.1f} "
          f"| {statistics.median(float(r['epoch_seconds']) for r in history):.2f} "
          f"| {result['predict_images_per_s']:,.0f} | {total:.1f} |")
    print(f"\ntarget test accuracy >= 0.905: {'met' if target else 'NOT met'}\n")
    print("| epoch | loss | accuracy | val_loss | val_accuracy | learning_rate | epoch s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in history:
        print(f"| {r['epoch']} | {float(r['loss']):.4f} | {float(r['accuracy']):.4f} | {float(r['val_loss']):.4f} "
              f"| {float(r['val_accuracy']):.4f} | {float(r['learning_rate']):.2e} | {float(r['epoch_seconds']):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per side in part 1 (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating plain/pipeline rounds in part 1")
    parser.add_argument("--train-images", type=int, default=60_000, help="training images in part 1")
    parser.add_argument("--batch-size", type=int, help="batch size (default: params.yaml cnn.batch_size)")
    parser.add_argument("--full", action="store_true", help="also train on full Fashion-MNIST (part 2)")
    parser.add_argument("--full-epochs", type=int, default=30, help="max epochs in part 2 (default 30)")
    parser.add_argument("--skip-overhead", action="store_true", help="run part 2 only")
    args = parser.parse_args()
    if not args.skip_overhead:
        part_overhead(args)
    if args.full:
        part_full(args)


if __name__ == "__main__":
    main()

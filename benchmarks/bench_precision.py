"""CNN training speed on the CPU: bfloat16 compute against float32 (the baseline), and the first
epoch with the training state built first against Keras building it in the first trace.

    python benchmarks/bench_precision.py [--images 7680] [--epochs 3]

1. First epoch: one epoch of 256 images through Keras' ``model.fit`` as it is (the baseline: on
   TensorFlow the optimizer's and metrics' variables are made inside the first trace, so the
   train step is traced twice) and after ``models.training.build_training_state`` (one trace).
   The table gives the largest weight difference between the two, beside that between two runs
   of the baseline: LeNet-5 is bit-identical run to run on the CPU, ResNet-20 is not (its
   batch-norm and convolution kernels vary in the last bits even under op determinism).
2. Precision: ResNet-20 (32x32 RGB) and LeNet-5 (32x32 gray) train ``--epochs`` epochs of
   ``--images`` random images (batch 128, flips and 4-pixel shifts as on colour photos) under
   ``cnn.mixed_precision: off`` (float32, the baseline) and ``bfloat16``; the median epoch after
   the first (which traces) is compared. bfloat16 pays off on CPUs with bfloat16 instructions
   (AVX512-BF16, AMX); elsewhere it can be slower.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SHAPES = {"resnet20": (32, 32, 3), "lenet5": (32, 32, 1)}


def data(shape: tuple[int, int, int], images: int):
    rng = np.random.default_rng(0)
    return rng.random((images, *shape), dtype=np.float32), rng.integers(0, 10, images)


def epoch_seconds(arch: str, precision: str, images: int, epochs: int) -> float:
    """Median seconds of the epochs after the first, under the precision setting."""
    from models import architectures, training

    x, y = data(SHAPES[arch], images)
    with training.runtime(training.Devices("tensorflow"), seed=0, precision=precision):
        model = training.compile_model(architectures.get(arch).build(SHAPES[arch], 10), learning_rate=1e-3)
        fit = training.fit(model, x, y, x[:256], y[:256], epochs=epochs, batch_size=128, patience=epochs,
                           lr_schedule="constant", verbose=0, augmentation={"horizontal_flip": True, "max_shift": 4})
    return statistics.median(fit.epoch_seconds[1:])


def first_epoch(arch: str, build_first: bool) -> tuple[float, list]:
    """Seconds of one epoch of 256 images from a fresh compiled model, and the trained weights."""
    from models import architectures, training

    x, y = data(SHAPES[arch], 256)
    with training.runtime(training.Devices("tensorflow"), seed=0, precision="off"):
        model = training.compile_model(architectures.get(arch).build(SHAPES[arch], 10), learning_rate=1e-3)
        start = time.perf_counter()
        if build_first:
            training.build_training_state(model, x, y)
        model.fit(x, y, batch_size=128, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - start, model.get_weights()


def max_difference(first: list, second: list) -> float:
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=7680)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    from pipeline import quiet

    quiet.mute_library_logs()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # "triggered tf.function retracing": every model here is new on purpose
    print(f"1. first epoch seconds (256 images, traces included, {os.cpu_count()} CPUs); max |weight difference|"
          " between the variants, and between two runs of the baseline (the run-to-run floor)")
    print(f"{'model':<10} {'Keras builds in the trace (baseline)':>37} {'built first':>12} {'ratio':>6}"
          f" {'variants':>9} {'baseline twice':>15}")
    for arch in SHAPES:
        base, w_base = first_epoch(arch, build_first=False)
        built, w_built = first_epoch(arch, build_first=True)
        _, w_again = first_epoch(arch, build_first=False)
        print(f"{arch:<10} {base:>37.2f} {built:>12.2f} {base / built:>5.2f}x"
              f" {max_difference(w_base, w_built):>9.1e} {max_difference(w_base, w_again):>15.1e}")
    print(f"\n2. median epoch seconds after the first, {args.images} images, batch 128")
    print(f"{'model':<10} {'float32 (baseline)':>19} {'bfloat16':>9} {'ratio':>6}")
    for arch in SHAPES:
        base = epoch_seconds(arch, "off", args.images, args.epochs)
        bf16 = epoch_seconds(arch, "bfloat16", args.images, args.epochs)
        print(f"{arch:<10} {base:>19.2f} {bf16:>9.2f} {base / bf16:>5.2f}x")


if __name__ == "__main__":
    main()

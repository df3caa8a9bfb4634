"""Augmented CNN training: the input threads against one thread (the baseline), same weights.

    python benchmarks/bench_augment.py [--images 8192] [--epochs 3]

Trains LeNet-5 (32x32 gray) and ResNet-20 (32x32 RGB) on random images through
``models.training.augmented_batches`` (flips and 1-pixel shifts), once with the batches prepared
by one thread (Keras' ``workers=1``, the earlier setting: the backend waits while Python augments)
and once as the project trains (two threads prepare the next batches meanwhile). Prints the
seconds of each, the ratio, and whether the trained weights are identical.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def train(arch: str, shape: tuple[int, int, int], images: int, epochs: int, workers: int | None):
    import keras

    from models import architectures, training

    rng = np.random.default_rng(0)
    x = rng.random((images, *shape), dtype=np.float32)
    y = rng.integers(0, 10, images)
    keras.utils.set_random_seed(0)
    model = training.compile_model(architectures.get(arch).build(shape, 10), learning_rate=1e-3)
    batches = training.augmented_batches(x, y, batch_size=64, seed=0, horizontal_flip=True, max_shift=1)
    if workers is not None:  # the baseline: what Keras does with the PyDataset defaults
        batches.workers = workers
    model.fit(batches, epochs=1, verbose=0, shuffle=False)  # compile and warm up outside the timing
    start = time.perf_counter()
    model.fit(batches, epochs=epochs, verbose=0, shuffle=False)
    return time.perf_counter() - start, model.get_weights()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--archs", nargs="+", default=["lenet5", "resnet20"])
    args = parser.parse_args()
    print(f"{args.images:,} images, {args.epochs} epochs, batch 64, {os.cpu_count()} CPUs\n")
    print("| model | one input thread (baseline) s | as trained s | baseline / as trained | same weights |\n"
          "|---|---:|---:|---:|---|")
    for arch, shape in [(a, s) for a, s in (("lenet5", (32, 32, 1)), ("resnet20", (32, 32, 3))) if a in args.archs]:
        base, base_weights = train(arch, shape, args.images, args.epochs, workers=1)
        now, weights = train(arch, shape, args.images, args.epochs, workers=None)
        same = all(np.array_equal(a, b) for a, b in zip(base_weights, weights))
        print(f"| {arch} | {base:.2f} | {now:.2f} | {base / now:.2f}x | {'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()

"""Throughput of the batched extractors against naive per-image loops, on Fashion-MNIST.

    python benchmarks/bench_features.py [--n N] [--n-jobs J] [--naive-n M] [--sift-fit-n K]

Reads the 70,000 Fashion-MNIST images (train + test) from ../shared/datasets/fashion-mnist
(or $CVD_SHARED_DATASETS/fashion-mnist) and falls back to random images, with a note,
when they are absent. For every extractor it times ``transform`` on the first N images
(``n_jobs=J``) and a naive per-image loop computing the same features on the first M
images, checks that both agree, and prints a markdown table. With ``--n-jobs 1`` (the
default) OpenCV and the BLAS/OpenMP pools are limited to one thread: one core.

Naive loops: raw - one ``astype`` per image; sobel - two ``cv2.Sobel``, one
``cv2.cartToPolar`` and one ``np.bincount`` per image; hog - ``skimage.feature.hog`` per
image; sift - ``SIFT.compute`` on a fresh dense grid, ``codebook.predict`` and
``np.bincount`` per image (the codebook fitted once, on the first K images, beforehand).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from skimage.feature import hog
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]  # the checkout, beside ../shared/datasets

from features import make_extractor
from features.extractors.sift import dense_grid
from pipeline.datasets import read_idx

DATASETS = Path(os.environ.get("CVD_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
FILES = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")

PARAMS = {
    "raw": {"scale": True},
    "sobel": {"ksize": 3, "cell_size": 4, "orientations": 8, "magnitude_map": True},
    "hog": {"orientations": 9, "pixels_per_cell": [4, 4], "cells_per_block": [2, 2], "block_norm": "L2-Hys"},
    "sift": {"mode": "dense", "step": 4, "size": 8, "n_words": 64, "norm": "l2"},
}


def load_images() -> tuple[np.ndarray, str]:
    folder = DATASETS / "fashion-mnist"
    if all((folder / name).is_file() for name in FILES):
        return np.concatenate([read_idx(folder / name, 3) for name in FILES]), "Fashion-MNIST"
    print(f"note: {folder} not found; benchmarking 70,000 random 28x28 images instead", file=sys.stderr)
    return np.random.default_rng(0).integers(0, 256, (70_000, 28, 28), dtype=np.uint8), "random images"


# ---------------------------------------------------------------------- naive per-image loops
def naive_raw(image: np.ndarray) -> np.ndarray:
    return image.reshape(-1).astype(np.float32) / np.float32(255)


def naive_sobel(image: np.ndarray, ksize=3, cell_size=4, orientations=8, magnitude_map=True) -> np.ndarray:
    f = image.astype(np.float32) / np.float32(255)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=ksize)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=ksize)
    magnitude, angle = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    ncr, ncc = image.shape[0] // cell_size, image.shape[1] // cell_size
    magnitude, angle = magnitude[: ncr * cell_size, : ncc * cell_size], angle[: ncr * cell_size, : ncc * cell_size]
    bins = (angle * np.float32(orientations / 180)).astype(np.int32) % np.int32(orientations)
    rows, cols = np.indices(bins.shape)
    cell = (rows // cell_size) * ncc + cols // cell_size
    hist = np.bincount((cell * orientations + bins).ravel(), magnitude.ravel(), ncr * ncc * orientations)
    hist = hist.reshape(-1, orientations)
    total = hist.sum(axis=1, keepdims=True)
    parts = [(hist / (total + 1e-6)).ravel()] + ([total.ravel() / cell_size**2] if magnitude_map else [])
    return np.concatenate(parts).astype(np.float32)


def naive_hog(image: np.ndarray, **params) -> np.ndarray:
    params = dict(params, pixels_per_cell=tuple(params["pixels_per_cell"]), cells_per_block=tuple(params["cells_per_block"]))
    return hog(image, feature_vector=True, **params)


def make_naive_sift(extractor) -> Callable[[np.ndarray], np.ndarray]:
    sift = cv2.SIFT_create()

    def naive_sift(image: np.ndarray) -> np.ndarray:
        _, desc = sift.compute(image, dense_grid(*image.shape, extractor.step, extractor.size))
        desc = desc[desc.any(axis=1)] if desc is not None else desc
        if desc is None or len(desc) == 0:
            return np.zeros(extractor.n_words, np.float32)
        hist = np.bincount(extractor.codebook_.predict(desc), minlength=extractor.n_words).astype(np.float64)
        return (hist / np.linalg.norm(hist)).astype(np.float32)

    return naive_sift


NAIVE = {
    "raw": naive_raw,
    "sobel": lambda image: naive_sobel(image, **PARAMS["sobel"]),
    "hog": lambda image: naive_hog(image, **PARAMS["hog"]),
}


# -------------------------------------------------------------------------------- timing
def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=70_000, help="images for the batched extractors")
    parser.add_argument("--n-jobs", type=int, default=1, help="joblib workers of the batched extractors")
    parser.add_argument("--naive-n", type=int, default=5_000, help="images for the naive loops")
    parser.add_argument("--sift-fit-n", type=int, default=10_000, help="images to fit the SIFT codebook on")
    parser.add_argument("--only", nargs="*", choices=list(PARAMS), default=list(PARAMS), help="extractors to run")
    args = parser.parse_args()

    all_images, source = load_images()
    images = all_images[: args.n]
    naive_images = images[: args.naive_n]
    if args.n_jobs == 1:
        cv2.setNumThreads(1)
        threadpool_limits(1)

    rows = []
    for name in args.only:
        extractor = make_extractor(name, **PARAMS[name], n_jobs=args.n_jobs)
        note = ""
        if name == "sift":
            _, fit_s = timed(lambda: extractor.fit(all_images[: args.sift_fit_n]))
            note = f"codebook fitted on {args.sift_fit_n:,} images in {fit_s:.1f} s"
            naive = make_naive_sift(extractor)
        else:
            extractor.fit(images[:1])
            naive = NAIVE[name]
        batched, batched_s = timed(lambda: extractor.transform(images))
        looped, naive_s = timed(lambda: np.stack([naive(image) for image in naive_images]))
        diff = float(np.abs(batched[: len(naive_images)] - looped).max())
        batched_rate, naive_rate = len(images) / batched_s, len(naive_images) / naive_s
        rows.append((name, batched.shape[1], batched_rate, naive_rate, batched_rate / naive_rate, diff, note))
        print(f"{name}: {batched_rate:,.0f} img/s batched, {naive_rate:,.0f} img/s naive", file=sys.stderr)

    print(f"\n{len(images):,} {source} images, n_jobs={args.n_jobs}, naive loops on the first "
          f"{len(naive_images):,} (one process{', one thread' if args.n_jobs == 1 else ''})\n")
    print("| extractor | D | batched img/s | naive per-image img/s | speed-up | max abs diff | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, d, batched_rate, naive_rate, ratio, diff, note in rows:
        print(f"| {name} | {d:,} | {batched_rate:,.0f} | {naive_rate:,.0f} | {ratio:.1f}x | {diff:.1e} | {note} |")


if __name__ == "__main__":
    main()

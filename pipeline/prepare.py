"""DVC stage ``prepare``: one stratified train/validation/test split that every model reads.

Output: ``data/prepared/split.npz`` (uint8 NHWC images, int labels, class names) and
``data/prepared/manifest.json`` (counts per class and split, SHA-256 of the contents).
Both are written to temporary files and renamed, so a failure leaves nothing behind.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline import layout
from pipeline.config import Config
from pipeline.datasets import Pools, check_class_sizes, load_source, preprocess
from pipeline.duplicates import find_duplicates, warn_duplicates
from pipeline.errors import DataError
from pipeline.io import SPLITS, Split, save_split, split_digest, write_json

OUT_DIR = layout.PREPARED_DIR


def _cap_per_class(y: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices keeping at most ``limit`` random samples of each class (all when None), sorted."""
    if limit is None:
        return np.arange(len(y))
    keep = [rng.permutation(np.flatnonzero(y == c))[:limit] for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


def _check_labels(y: np.ndarray, n_classes: int, what: str) -> None:
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"{what}: label {int(y.max())} outside 0..{n_classes - 1}")


def split_pools(pools: Pools, *, seed: int, val_fraction: float, test_fraction: float,
                limit_per_class: int | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Stratified, seeded split; the official test split is kept where the dataset has one."""
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    n_classes = len(pools.class_names)
    _check_labels(pools.y_train, n_classes, "training labels")
    keep = _cap_per_class(pools.y_train, limit_per_class, rng)
    x_pool, y_pool = pools.x_train[keep], pools.y_train[keep]
    if len(np.unique(y_pool)) < 2:
        raise DataError(f"found {len(np.unique(y_pool))} class(es) in the data; need at least 2")
    check_class_sizes(pools, y_pool, val_fraction, test_fraction if pools.x_test is None else None)
    try:
        if pools.x_test is None:
            x_pool, x_test, y_pool, y_test = train_test_split(
                x_pool, y_pool, test_size=test_fraction, stratify=y_pool, random_state=seed)
        else:
            _check_labels(pools.y_test, n_classes, "test labels")
            keep_test = _cap_per_class(pools.y_test, limit_per_class, rng)
            x_test, y_test = pools.x_test[keep_test], pools.y_test[keep_test]
        x_train, x_val, y_train, y_val = train_test_split(
            x_pool, y_pool, test_size=val_fraction, stratify=y_pool, random_state=seed)
    except ValueError as exc:  # too few samples of a class to stratify
        raise DataError(f"cannot make a stratified split: {exc} (add images or lower the fractions)") from None
    return ({"train": x_train, "val": x_val, "test": x_test},
            {"train": y_train, "val": y_val, "test": y_test})


def build_manifest(split: Split, cfg: Config, pools: Pools) -> dict:
    counts = {
        name: {cls: int(np.sum(split.y[name] == i)) for i, cls in enumerate(split.class_names)}
        for name in SPLITS
    }
    return {
        "dataset": split.dataset,
        "sha256": split.sha256,
        "image_shape": list(split.image_shape),
        "deskew": cfg.data.deskew,
        "num_classes": split.num_classes,
        "class_names": split.class_names,
        "counts": {name: int(len(split.y[name])) for name in SPLITS},
        "counts_per_class": counts,
        "official_test_split": pools.x_test is not None,
        "skipped_files": pools.skipped,
        "seed": cfg.seed,
        "sources": pools.sources,
    }


def run(cfg: Config, out_dir: Path = OUT_DIR) -> dict:
    """Load the configured source, split it, write split.npz + manifest.json, log to MLflow."""
    d = cfg.data
    pools = load_source(d.dataset, d.path, d.image_size, d.channels, d.max_pixels)
    x, y = split_pools(pools, seed=cfg.seed, val_fraction=d.val_fraction,
                       test_fraction=d.test_fraction, limit_per_class=d.limit_per_class)
    x = {name: preprocess(x[name], d.image_size, d.channels, d.deskew) for name in SPLITS}
    y = {name: y[name].astype(np.int64) for name in SPLITS}
    split = Split(x, y, pools.class_names, d.dataset, split_digest(x, y, pools.class_names))
    manifest = build_manifest(split, cfg, pools)
    manifest["duplicates"] = find_duplicates(pools, x)
    warn_duplicates(manifest["duplicates"])

    save_split(out_dir / layout.SPLIT.name, split)
    write_json(out_dir / layout.MANIFEST.name, manifest)

    from pipeline.tracking import data_experiment, log_metrics, stage_run

    with stage_run("prepare", experiment=data_experiment(cfg.experiment), run_name=f"prepare-{d.dataset}",
                   dataset=d.dataset, split_sha256=split.sha256, params={"seed": cfg.seed, "data": vars(d)}):
        log_metrics({"n_" + name: n for name, n in manifest["counts"].items()}
                    | {"num_classes": split.num_classes, "skipped_files": sum(pools.skipped.values())})
    return manifest

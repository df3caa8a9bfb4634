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
from pipeline.datasets import Pools, load_source
from pipeline.preprocessing import preprocess
from pipeline.duplicates import find_duplicates, warn_duplicates
from pipeline.io import SPLITS, Split, save_split, split_digest, write_json
from pipeline.splitting import split_pools

OUT_DIR = layout.PREPARED_DIR


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
        "official_test_split": pools.x_test is not None and cfg.data.test_path is None,
        "test_path": cfg.data.test_path,  # the folder dataset's own test folder (test_fraction then unused)
        "skipped_files": pools.skipped,
        "seed": cfg.seed,
        "sources": pools.sources,
    }


def run(cfg: Config, out_dir: Path = OUT_DIR) -> dict:
    """Load the configured source, split it, write split.npz + manifest.json (``compare`` logs its
    MLflow run: :mod:`pipeline.data_runs`)."""
    from pipeline.store import check_store

    check_store()  # a tracking server that does not answer fails the pipeline here, not after training
    d = cfg.data
    pools = load_source(d.dataset, d.path, d.image_size, d.channels, d.max_pixels, d.test_path)
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

    return manifest

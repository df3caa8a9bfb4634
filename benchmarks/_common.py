"""Helpers shared by the benchmarks that build ``prepare``'s split outside DVC.

Run a benchmark as ``python benchmarks/bench_<name>.py``: Python puts ``benchmarks/`` first on
the import path, so ``from _common import ...`` finds this file, and the project's packages
come from the installed project (``pip install -e .``), as they would for any user.
"""
from __future__ import annotations

import numpy as np
import yaml


def parse_overrides(pairs: list[str]) -> dict:
    """``-S key=value`` as ``dvc exp run -S`` takes them (value parsed as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"-S {pair!r}: expected key=value")
        out[key] = yaml.safe_load(value)
    return out


def prepared_split(cfg):
    """(images, labels, number of classes) of the train/val/test split ``prepare`` builds from ``cfg``."""
    from pipeline.datasets import load_source
    from pipeline.preprocessing import preprocess
    from pipeline.io import SPLITS
    from pipeline.splitting import split_pools

    d = cfg.data
    pools = load_source(d.dataset, d.path, d.image_size, d.channels)
    x, y = split_pools(pools, seed=cfg.seed, val_fraction=d.val_fraction,
                       test_fraction=d.test_fraction, limit_per_class=d.limit_per_class)
    x = {name: preprocess(x[name], d.image_size, d.channels, d.deskew) for name in SPLITS}
    return x, {name: y[name].astype(np.int64) for name in SPLITS}, len(pools.class_names)

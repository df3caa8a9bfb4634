"""DVC stage ``features@<name>``: fit one extractor on TRAIN images, transform every split.

Output: ``data/features/<name>.npz`` (float32 matrices + labels + the split's SHA-256, so
the classifier stages need nothing else), ``artifacts/features/<name>.skops`` (the fitted
extractor, a scikit-learn transformer: ``train_classical`` puts it in front of each classifier
to save one image-in pipeline) and ``metrics/features/<name>.json`` (dimension,
fit/transform seconds, images/s), the numbers ``compare`` logs as this stage's MLflow run
(:mod:`pipeline.data_runs`; this stage imports no MLflow). A stochastic
extractor (one taking ``random_state``: the SIFT codebook) is also fitted with each extra seed
of ``evaluation.repeats`` when it is > 1; those matrices go to the same file under
``x_<part>__seed<seed>`` (:func:`comparison.repeats.matrix_key`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline.config import Config
from pipeline import layout
from pipeline.errors import DataError
from pipeline.extractors import build_extractor
from pipeline.io import SPLITS, load_split, save_npz, write_bytes, write_json

feature_path = layout.features_path
extractor_path = layout.extractor_path


def save_extractor(extractor, name: str) -> Path:
    """Write the fitted extractor with skops (loads without running code; see models.classical)."""
    from models.classical import dumps

    dest = extractor_path(name)
    write_bytes(dest, dumps(extractor), suffix=".skops")
    return dest


def _extra_seed_matrices(cfg: Config, name: str, split) -> dict[str, np.ndarray]:
    """``x_<part>__seed<seed>`` of every extra seed of ``evaluation.repeats``, for a stochastic
    extractor; nothing for a deterministic one or one repeat."""
    from comparison.repeats import extractor_is_stochastic, matrix_key, seeds

    arrays = {}
    for seed in seeds(cfg.seed, cfg.evaluation.repeats, extractor_is_stochastic(name))[1:]:
        extractor = build_extractor(cfg, name, seed).fit(split.x["train"], split.y["train"])
        arrays |= {matrix_key(p, seed): extractor.transform(split.x[p]).astype(np.float32, copy=False) for p in SPLITS}
    return arrays


def run(cfg: Config, name: str, split_path: str | Path = layout.SPLIT) -> dict:
    extractor = build_extractor(cfg, name)  # a bad features.<name> is reported before any data is read
    split = load_split(split_path)

    start = time.perf_counter()
    extractor.fit(split.x["train"], split.y["train"])
    fit_seconds = time.perf_counter() - start

    matrices, transform_seconds = {}, 0.0
    for part in SPLITS:
        start = time.perf_counter()
        matrices[part] = extractor.transform(split.x[part])
        transform_seconds += time.perf_counter() - start
    n_images = sum(len(split.x[p]) for p in SPLITS)
    dims = {m.shape[1] for m in matrices.values()}
    if len(dims) != 1:
        raise DataError(f"features.{name}: splits got different dimensions {sorted(dims)}")

    result = {
        "feature": name,
        "dimension": int(dims.pop()),
        "n_images": int(n_images),
        "fit_seconds": round(fit_seconds, 4),
        "transform_seconds": round(transform_seconds, 4),
        "images_per_s": round(n_images / max(transform_seconds, 1e-9), 1),
    }
    arrays = {f"x_{p}": matrices[p].astype(np.float32, copy=False) for p in SPLITS}
    arrays |= {f"y_{p}": split.y[p] for p in SPLITS} | _extra_seed_matrices(cfg, name, split)
    save_npz(feature_path(name), class_names=np.array(split.class_names), dataset=np.array(split.dataset),
             split_sha256=np.array(split.sha256), feature=np.array(name), **arrays)
    save_extractor(extractor, name)

    write_json(layout.feature_metrics_path(name), result)
    return result

"""Accuracy and fit time of the classical models, printed as markdown tables.

1. digits (the default data, prepared exactly as `cvd prepare` does): every feature set
   with ``rbf_svm`` (target: each >= 95 %).
2. Fashion-MNIST from ../shared/datasets (official 60k/10k split): HOG + ``rbf_svm``
   (target >= 90 %) against the named baseline of the same run, raw pixels + ``rbf_svm``
   (the Fashion-MNIST benchmark's best scikit-learn row, SVC on raw pixels, reports 89.7 %).

Usage: python benchmarks/bench_classical.py [--part digits|fashion|all] [--n-train N] [--pca K]
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]  # the checkout: its params.yaml, ../shared

from features import make_extractor
from models.classical import make_classifier, param_count
from pipeline.config import parse_config
from pipeline.datasets import load_digits_source, load_idx_source, resize_batch
from pipeline.prepare import split_pools

FASHION = ROOT.parent / "shared" / "datasets" / "fashion-mnist"


def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def evaluate(feature: str, feature_params: dict, classifier: str, hyper: dict, pca, x_train, y_train,
             x_test, y_test, seed: int, n_jobs: int) -> dict:
    extractor = make_extractor(feature, **feature_params, n_jobs=n_jobs)
    start = time.perf_counter()
    f_train = extractor.fit_transform(x_train, y_train)
    f_test = extractor.transform(x_test)
    extract_seconds = time.perf_counter() - start
    model = make_classifier(classifier, pca=pca, random_state=seed, **hyper)
    start = time.perf_counter()
    model.fit(f_train, y_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = float(np.mean(model.predict(f_test) == y_test))
    predict_seconds = time.perf_counter() - start
    return {"feature": feature, "dim": f_train.shape[1], "classifier": classifier, "accuracy": accuracy,
            "extract_s": extract_seconds, "fit_s": fit_seconds, "predict_s": predict_seconds,
            "params": param_count(model)}


def table(rows: list[dict], baseline: dict | None = None) -> str:
    lines = ["| feature | dim | classifier | test accuracy | extract s | fit s | predict s | params |"
             + (" fit time vs baseline |" if baseline else ""),
             "|---|---:|---|---:|---:|---:|---:|---:|" + ("---:|" if baseline else "")]
    for r in rows:
        line = (f"| {r['feature']} | {r['dim']:,} | {r['classifier']} | {100 * r['accuracy']:.2f} % | "
                f"{r['extract_s']:.1f} | {r['fit_s']:.1f} | {r['predict_s']:.1f} | {r['params']:,} |")
        if baseline:
            line += f" {r['fit_s'] / baseline['fit_s']:.2f}× |"
        lines.append(line)
    return "\n".join(lines)


def digits(n_jobs: int) -> None:
    raw = params()
    cfg = parse_config(raw)
    pools = load_digits_source()
    x, y = split_pools(pools, seed=cfg.seed, val_fraction=cfg.data.val_fraction,
                       test_fraction=cfg.data.test_fraction, limit_per_class=None)
    x = {k: resize_batch(v, cfg.data.image_size, 1) for k, v in x.items()}
    rows = [evaluate(name, cfg.features.params[name], "rbf_svm", cfg.classical.hyperparams["rbf_svm"],
                     cfg.classical.pca, x["train"], y["train"], x["test"], y["test"], cfg.seed, n_jobs)
            for name in cfg.features.names]
    print(f"\n### digits ({len(y['train'])} train / {len(y['test'])} test, 32×32, params.yaml defaults)\n")
    print(table(rows))


def fashion(n_train: int, pca, n_jobs: int) -> None:
    if not FASHION.is_dir():
        print(f"\n(Fashion-MNIST not found under {FASHION}; skipped)")
        return
    pools = load_idx_source(FASHION, "fashion_mnist")
    rng = np.random.default_rng(0)
    idx = np.sort(rng.permutation(len(pools.y_train))[:n_train])
    x_train, y_train = pools.x_train[idx], pools.y_train[idx]
    hog = copy.deepcopy(params()["features"]["hog"])
    svm = {"C": 10.0, "gamma": "scale", "cache_size": 2000}
    baseline = evaluate("raw", {"scale": True}, "rbf_svm", svm, pca, x_train, y_train,
                        pools.x_test, pools.y_test, 0, n_jobs)
    rows = [baseline, evaluate("hog", hog, "rbf_svm", svm, pca, x_train, y_train,
                               pools.x_test, pools.y_test, 0, n_jobs)]
    print(f"\n### Fashion-MNIST ({n_train:,} train / {len(pools.y_test):,} official test, 28×28, "
          f"rbf_svm C=10, PCA={pca}; baseline: raw pixels + rbf_svm)\n")
    print(table(rows, baseline))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["digits", "fashion", "all"], default="all")
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--pca", type=float, default=None, help="PCA components (int) or variance fraction")
    parser.add_argument("--n-jobs", type=int, default=-1)
    args = parser.parse_args()
    pca = int(args.pca) if args.pca and args.pca >= 1 else args.pca
    if args.part in ("digits", "all"):
        digits(args.n_jobs)
    if args.part in ("fashion", "all"):
        fashion(args.n_train, pca, args.n_jobs)


if __name__ == "__main__":
    main()

"""Accuracy versus time of classical models on a large data set: what scales to 50,000 images.

Builds prepare's split from params.yaml (plus ``-S`` overrides, as ``dvc exp run -S`` takes
them), extracts each feature set once with the project's extractors, then fits every
(feature, model) candidate in its own worker process with ONE BLAS/OpenMP thread, so the fit
seconds are single-core seconds whatever the machine, and the candidates run side by side.
A candidate still running at ``--deadline`` is reported as not finished.

Candidates: the pipeline's classifiers as params.yaml configures them, plus the large-data
options the README discusses: PCA before an RBF SVM, a Nystroem kernel map feeding a linear
model, and an early-stopped SGD linear SVM.

    python benchmarks/bench_classical_scale.py --data DIR [--features hog,sobel] [--workers 14] [-S key=value ...]
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor, TimeoutError, wait
from pathlib import Path

import numpy as np

from _common import parse_overrides, prepared_split
from pipeline.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]


def candidates(seed: int) -> dict:
    """name -> unfitted estimator (after a StandardScaler)."""
    from sklearn.decomposition import PCA
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC, LinearSVC

    return {
        "logreg C=1": LogisticRegression(C=1.0, max_iter=2000),
        "linear_svm C=0.01 (params.yaml)": LinearSVC(C=0.01, max_iter=2000, random_state=seed),
        "sgd hinge early-stop": SGDClassifier(loss="hinge", alpha=1e-4, early_stopping=True, random_state=seed),
        "rbf_svm C=10": SVC(C=10.0, gamma="scale"),
        "pca 0.9 + rbf_svm C=10": make_pipeline(PCA(0.9, random_state=seed), SVC(C=10.0, gamma="scale")),
        "pca 100 + rbf_svm C=10": make_pipeline(PCA(100, random_state=seed), SVC(C=10.0, gamma="scale")),
        "pca 60 + rbf_svm C=10": make_pipeline(PCA(60, random_state=seed), SVC(C=10.0, gamma="scale")),
        "pca 200 + rbf_svm C=10": make_pipeline(PCA(200, random_state=seed), SVC(C=10.0, gamma="scale")),
        "pca 100 + rbf_svm C=30": make_pipeline(PCA(100, random_state=seed), SVC(C=30.0, gamma="scale")),
        "nystroem 2000 + linear_svm": make_pipeline(
            Nystroem(n_components=2000, random_state=seed), LinearSVC(C=0.1, max_iter=2000, random_state=seed)),
        "nystroem 4000 + sgd": make_pipeline(
            Nystroem(n_components=4000, random_state=seed),
            SGDClassifier(loss="hinge", alpha=1e-5, early_stopping=True, random_state=seed)),
    }


def fit_one(feature: str, name: str, path: str) -> dict:
    from threadpoolctl import threadpool_limits
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with np.load(path) as npz:
        d = {k: npz[k] for k in npz.files}
    model = make_pipeline(StandardScaler(), candidates(int(d["seed"]))[name])
    with threadpool_limits(1):
        start = time.perf_counter()
        model.fit(d["x_train"], d["y_train"])
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        y_pred = model.predict(d["x_test"])
        predict_s = time.perf_counter() - start
    val = float(np.mean(model.predict(d["x_val"]) == d["y_val"]))
    return {"feature": feature, "model": name, "fit_s": fit_s, "predict_s": predict_s,
            "val": val, "test": float(np.mean(y_pred == d["y_test"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--features", default="raw,sobel,hog,sift")
    parser.add_argument("--models", default="", help="comma-separated candidate names; default all")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds for all fits together")
    parser.add_argument("--cache", default="/tmp/classical_scale")
    parser.add_argument("-S", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    from pipeline.extractors import build_extractor

    cfg = load_config(REPO_ROOT / "params.yaml",
                      {"data.dataset": args.dataset, "data.path": args.data} | parse_overrides(args.overrides))
    x, y, _ = prepared_split(cfg)
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    print(f"{args.dataset}: train {len(y['train']):,} / val {len(y['val']):,} / test {len(y['test']):,}, "
          f"{x['train'].shape[1:]}, {os.cpu_count()} cores, {args.workers} workers\n", flush=True)
    print("| feature | dim | extract s (all splits, all cores) |\n|---|---:|---:|")
    paths = {}
    for feature in args.features.split(","):
        start = time.perf_counter()
        extractor = build_extractor(cfg, feature).fit(x["train"], y["train"])  # as features@<feature> builds it
        mats = {f"x_{p}": extractor.transform(x[p]).astype(np.float32) for p in ("train", "val", "test")}
        seconds = time.perf_counter() - start
        paths[feature] = f"{args.cache}/{feature}.npz"
        np.savez(paths[feature], seed=cfg.seed, **mats, **{f"y_{p}": y[p] for p in ("train", "val", "test")})
        print(f"| {feature} | {mats['x_train'].shape[1]} | {seconds:.1f} |", flush=True)

    names = args.models.split(",") if args.models else list(candidates(cfg.seed))
    start = time.perf_counter()
    print("\n| feature | model | fit s (1 core) | predict test s | val acc | test acc |\n|---|---|---:|---:|---:|---:|",
          flush=True)
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = {pool.submit(fit_one, f, n, p): (f, n) for f, p in paths.items() for n in names}
        done, pending = wait(jobs, timeout=args.deadline)
        for job in done:
            try:
                r = job.result()
                print(f"| {r['feature']} | {r['model']} | {r['fit_s']:.1f} | {r['predict_s']:.1f} | "
                      f"{100 * r['val']:.2f} | {100 * r['test']:.2f} |", flush=True)
            except Exception as exc:  # noqa: BLE001 - a benchmark row, not a product error
                print(f"| {jobs[job][0]} | {jobs[job][1]} | failed: {exc} | | | |")
        for job in pending:
            print(f"| {jobs[job][0]} | {jobs[job][1]} | not finished in {args.deadline:.0f} s | | | |", flush=True)
            job.cancel()
        if pending:
            for proc in getattr(pool, "_processes", {}).values():
                proc.terminate()
    print(f"\nwall {time.perf_counter() - start:.0f} s for the fits", flush=True)


if __name__ == "__main__":
    main()

"""DVC stage ``train_classical@<feature>-<classifier>``: one scikit-learn model on one feature set.

Fits on the training split (or, with ``classical.search: true``, a grid search scored on
the validation split and refitted on train+validation -- never on test), predicts the
validation and test rows once each (per-class scores, and labels from their argmax or one
``predict``: :func:`models.predicting.predict_part`), times ``predict`` on a bounded sample of test rows,
evaluates on test and writes the shared model outputs, per-image predictions included
(see :mod:`pipeline.results`). A stochastic model (:mod:`comparison.repeats`) is then refitted
with each extra seed of ``evaluation.repeats``, on that seed's features when the extractor is
the stochastic part, to add its scores to the metrics.

The model is saved as ONE scikit-learn Pipeline from image batch to label -- the extractor the
features stage fitted (``artifacts/features/<feature>.skops``) followed by the fitted scaler /
PCA / classifier, composed without refitting -- at ``artifacts/classical/<id>.skops``
(:func:`models.classical.load_pipeline` reads it). skops loads without running arbitrary
code; joblib/pickle files execute code when loaded and must only be loaded from a trusted source.

This process imports neither MLflow nor matplotlib (together ~2 s a stage, more than most fits
here): ``compare`` logs each classical model's MLflow run from the files written here
(:mod:`pipeline.model_runs`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from features import check_extractor_name
from models import classifiers
from models.predicting import images_per_second, predict_part
from pipeline import layout
from pipeline.classical_training import build_classifier, fit_model
from pipeline.config import Config
from pipeline.errors import DataError
from pipeline.io import SPLITS, write_bytes

model_id = layout.model_id


def save_model(model, dest: Path) -> None:
    """Write the image-in pipeline with skops (:func:`models.classical.load_pipeline` reads it)."""
    from models.classical import dumps

    write_bytes(dest, dumps(model), suffix=".skops")


def extra_seed_data(cfg: Config, feature: str, classifier: str, data: dict) -> list[tuple[int, dict]]:
    """``(seed, data)`` of each extra seed a stochastic model trains with (none for a
    deterministic one): ``data`` with the seed's own matrices when the extractor is stochastic."""
    from comparison.repeats import classical_is_stochastic, extractor_is_stochastic, matrix_key, seeds

    out = []
    for seed in seeds(cfg.seed, cfg.evaluation.repeats, classical_is_stochastic(feature, classifier))[1:]:
        keys = {f"x_{p}": matrix_key(p, seed) for p in SPLITS} if extractor_is_stochastic(feature) else {}
        if any(key not in data for key in keys.values()):
            raise DataError(f"{layout.features_path(feature)}: no matrices for seed {seed} of evaluation.repeats = "
                            f"{cfg.evaluation.repeats}; rerun `cvd features --name {feature}`")
        out.append((seed, data | {plain: data[key] for plain, key in keys.items()}))
    return out


def train_extra_seeds(cfg: Config, classifier: str, seeded: list[tuple[int, dict]]) -> list[dict]:
    """Fit and score the model once per ``(seed, data)``; their scores
    (:func:`comparison.repeats.seed_scores`), in seed order. ``compare`` logs each as an MLflow run
    nested under the model's (from the metrics' ``per_seed``)."""
    from comparison.repeats import seed_scores

    scores = []
    for seed, data in seeded:
        pipe, _, _ = fit_model(cfg, classifier, data, seed)
        val_accuracy = np.mean(pipe.predict(data["x_val"]) == data["y_val"])
        scores.append(seed_scores(seed, data["y_test"], pipe.predict(data["x_test"]), val_accuracy,
                                  len(data["class_names"])))
    return scores


def run(cfg: Config, feature: str, classifier: str) -> dict:
    from models.classical import image_pipeline, param_count
    from pipeline.extractors import load_extractor, load_features
    from pipeline.results import record_model

    check_extractor_name(feature)
    classifiers.check_name(classifier)
    build_classifier(cfg, classifier)  # a bad classical.<classifier> is reported before any data is read
    data = load_features(feature)
    if data["x_train"].shape[0] != len(data["y_train"]):
        raise DataError(f"{layout.features_path(feature)}: rows and labels differ; "
                        f"rerun `cvd features --name {feature}`")
    extractor = load_extractor(feature)
    seeded = extra_seed_data(cfg, feature, classifier, data)
    mid = model_id(feature, classifier)
    tags = {"approach": "classical", "feature": feature, "classifier": classifier, "model": mid}
    params = {"classifier": classifier, "feature": feature, "pca": cfg.classical.pca,
              "scale": cfg.classical.scale, "search": cfg.classical.search, "seed": cfg.seed, **cfg.classical.section(classifier)}

    pipe, fit_seconds, best = fit_model(cfg, classifier, data)
    params |= {f"best.{k.removeprefix('clf__')}": v for k, v in (best or {}).items()}
    n_classes = len(data["class_names"])
    start = time.perf_counter()
    val, _ = predict_part(pipe, data["x_val"], data["y_val"], n_classes)
    test, predict_seconds = predict_part(pipe, data["x_test"], data["y_test"], n_classes)
    prediction_pass_seconds = time.perf_counter() - start  # validation + test, each predicted once
    images_per_s = images_per_second(pipe, data["x_test"], predict_seconds)
    repeats = train_extra_seeds(cfg, classifier, seeded)

    dest = layout.classical_model_path(mid)
    save_model(image_pipeline(extractor, pipe), dest)
    result = record_model(
        run=None, approach="classical", model_id=mid, test=test, val=val,
        class_names=data["class_names"], param_count=param_count(pipe), model_path=dest,
        seed=cfg.seed, confidence=cfg.evaluation.confidence,
        bootstrap_resamples=cfg.evaluation.bootstrap_resamples,
        extra_scores={"val_accuracy": round(float(np.mean(val.correct)), 6),
                      "feature_dim": int(data["x_train"].shape[1])},
        repeats=repeats, draw_confusion=False,
        run_info={**tags, "dataset": data["dataset"], "split_sha256": data["split_sha256"],
                  "fit_seconds": round(fit_seconds, 4), "predict_seconds": round(prediction_pass_seconds, 4),
                  "predict_images_per_s": round(images_per_s, 1),
                  "params": {k: str(v) for k, v in params.items()}},
    )
    spread = (f" (mean {result['test_accuracy_mean']:.4f} ± {result['test_accuracy_sd']:.4f} over "
              f"{result['repeats']} seeds)" if result["repeats"] > 1 else "")
    print(f"{mid}: test accuracy {result['test_accuracy']:.4f}{spread}, macro-F1 {result['macro_f1']:.4f}, "
          f"{result['param_count']:,} params, fit {fit_seconds:.2f}s")
    return result

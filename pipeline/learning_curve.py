"""DVC stage ``learning_curve@<fraction>`` (after ``compare``): one point of the learning curve.

The models are those of ``compare``'s plan (:mod:`pipeline.curve_plan`): params.yaml
``curve.models``, or else the best classical and the best deep model chosen on validation. Each is retrained,
as its own train stage builds it (:func:`pipeline.train_classical.fit_model` on its feature
rows, :mod:`pipeline.cnn_training` for a CNN; the validation split unchanged), on the nested,
stratified, seeded subset of the training split of ``fraction``
(:func:`comparison.curves.nested_subset`), and evaluated on the same test images as every
other point. A subset that is the whole training split reuses the model already trained: its
test predictions (``predictions/<model>/test.csv``), fit seconds and epochs.

Writes ``curves/<fraction>.json``: per model the test accuracy with its Wilson interval, fit
seconds, epochs and McNemar's exact test against the first model of the other approach at
the same size. Each model's point is also an MLflow run nested under the newest comparison
run on this split (a one-line message when it cannot be logged; the stage still succeeds).
``explain`` draws the curve and states the crossover (:mod:`pipeline.curve_report`).
"""
from __future__ import annotations

import math

import numpy as np

from comparison import curves
from pipeline import curve_plan, layout
from pipeline.comparison_run import log_curve_point
from pipeline.config import Config
from pipeline.errors import ConfigError, DataError
from pipeline.io import load_split, read_json, write_json


def parse_fraction(text: str) -> float:
    try:
        fraction = float(text)
    except ValueError:
        fraction = math.nan
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"--fraction = {text!r}: must be a number in (0, 1], one of curve.fractions")
    return fraction


def reuse(model: str, split_sha256: str) -> tuple[np.ndarray, float | None, int | None]:
    """The test predictions, fit seconds and epochs of the model its train stage wrote."""
    from pipeline.read_results import read_predictions

    approach = layout.approach_of(model)
    paths = (layout.scores_path(approach, model), layout.run_info_path(approach, model))
    info = {**read_json(paths[0]), **read_json(paths[1])}
    if info.get("split_sha256") != split_sha256:
        raise DataError(f"{paths[1]}: trained on another split than {layout.SPLIT}; run `dvc repro`")
    predictions = read_predictions(model, "test")
    y_pred = np.empty(len(predictions), dtype=np.int64)
    y_pred[predictions.index] = predictions.y_pred
    return y_pred, info.get("fit_seconds"), info.get("epochs_run")


def train_classical(cfg: Config, model: str, rows: np.ndarray, split) -> tuple[np.ndarray, float, None]:
    from pipeline.classical_training import fit_model
    from pipeline.extractors import load_features

    feature, classifier = layout.split_model_id(model)
    data = load_features(feature)
    if data["split_sha256"] != split.sha256 or not np.array_equal(data["y_train"], split.y["train"]):
        raise DataError(f"{layout.features_path(feature)}: not the rows of {layout.SPLIT}; run `dvc repro`")
    pipe, fit_seconds, _ = fit_model(cfg, classifier, data | {"x_train": data["x_train"][rows],  # a small subset:
                                                              "y_train": data["y_train"][rows]}, cap_pca=True)  # PCA fits it
    return pipe.predict(data["x_test"]), fit_seconds, None


def train_cnn(cfg: Config, arch: str, rows: np.ndarray, split) -> tuple[np.ndarray, float, int]:
    from models import training
    from pipeline.cnn_training import build_model, check_settings, fit_model, runtime

    check_settings(cfg, arch)
    x = {part: training.scale_images(split.x[part]) for part in ("val", "test")}
    batch_size = cfg.cnn.training(arch).batch_size
    with runtime(cfg, training.detect_devices()) as rt:
        net = build_model(cfg, arch, split.image_shape, split.num_classes,
                          steps_per_epoch=math.ceil(len(rows) / batch_size), rt=rt)
        fit = fit_model(cfg, arch, net, training.scale_images(split.x["train"][rows]), split.y["train"][rows],
                        x["val"], split.y["val"], verbose=0)
        y_pred = np.argmax(net.predict(x["test"], batch_size=batch_size, verbose=0), axis=1)
    return y_pred, fit.fit_seconds, fit.epochs_run


def run(cfg: Config, fraction_text: str) -> dict:
    fraction = parse_fraction(fraction_text)
    models = curve_plan.read()
    split = load_split()
    rows = curves.nested_subset(split.y["train"], fraction, cfg.seed)
    whole = len(rows) == len(split.y["train"])
    points, correct = [], {}
    for model in models:
        approach = layout.approach_of(model)
        if whole:
            y_pred, fit_seconds, epochs = reuse(model, split.sha256)
        else:
            train = train_classical if approach == "classical" else train_cnn
            y_pred, fit_seconds, epochs = train(cfg, model, rows, split)
        correct[model] = np.asarray(y_pred) == split.y["test"]
        points.append(curves.model_point(model, approach, correct[model], n_train=len(rows), fit_seconds=fit_seconds,
                                         epochs=epochs, confidence=cfg.evaluation.confidence, reused=whole)
                      | {"fraction": fraction})
        p = points[-1]
        print(f"{model} on {len(rows):,} training images ({curves.fraction_text(fraction)}): test accuracy "
              f"{p['test_accuracy']:.4f}{' (the model already trained)' if whole else ''}, fit {fit_seconds or 0:.2f}s")
    points = curves.paired_against(points, correct)
    point = {"fraction": fraction, "n_train": len(rows), "n_train_full": len(split.y["train"]),
             "n_test": len(split.y["test"]), "seed": cfg.seed, "dataset": split.dataset,
             "split_sha256": split.sha256, "points": points}
    write_json(layout.curve_point_path(fraction_text), point)
    print(f"wrote {layout.curve_point_path(fraction_text)}; {log_curve_point(cfg.experiment, point)}")
    return point

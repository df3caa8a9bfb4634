"""DVC stage ``train_classical@<feature>-<classifier>``: one scikit-learn model on one feature set.

Fits on the training split (or, with ``classical.search: true``, a grid search scored on
the validation split and refitted on train+validation -- never on test), predicts the
validation and test rows once each (per-class scores, and labels from their argmax or one
``predict``: :func:`predict_part`), times ``predict`` on a bounded sample of test rows,
evaluates on test and writes the shared model outputs, per-image predictions included
(see :mod:`pipeline.results`). A stochastic model (:mod:`pipeline.repeats`) is then refitted
with each extra seed of ``evaluation.repeats``, on that seed's features when the extractor is
the stochastic part, to add its scores to the metrics.

The model is saved as ONE scikit-learn Pipeline from image batch to label -- the extractor the
features stage fitted (``artifacts/features/<feature>.skops``) followed by the fitted scaler /
PCA / classifier, composed without refitting -- at ``artifacts/classical/<id>.skops``
(:func:`models.classical.load_pipeline` reads it). skops loads without running arbitrary
code; joblib/pickle files execute code when loaded and must only be loaded from a trusted source.

This process imports neither MLflow nor matplotlib (together ~2 s a stage, more than most fits
here): ``compare``, which imports both anyway, logs each classical model's MLflow run from the
files written here (:mod:`pipeline.model_runs`). The CNN stages log their own runs (live epoch
metrics; TensorFlow's import dwarfs MLflow's).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from features import check_extractor_name
from models import classifiers
from pipeline.config import Config, component_section
from pipeline.errors import DataError
from pipeline.io import SPLITS, atomic_path

ARTIFACT_DIR = Path("artifacts/classical")
THROUGHPUT_SAMPLE = 1000  # test rows timed for predict_images_per_s


def model_id(feature: str, classifier: str) -> str:
    return f"{feature}-{classifier}"


def build_classifier(cfg: Config, classifier: str, seed: int | None = None):
    """The unfitted pipeline of params.yaml ``classical.<classifier>`` (+ ``classical.scale`` and
    ``classical.pca``), and its search grid when ``classical.search`` is on; a bad value is one ConfigError line.
    ``random_state`` is ``seed``, by default params.yaml's."""
    from models.classical import make_classifier, make_search, predefined_split

    with component_section(cfg, f"classical.{classifier}"):
        pipe = make_classifier(classifier, pca=cfg.classical.pca, scale=cfg.classical.scale,
                               random_state=cfg.seed if seed is None else seed,
                               **cfg.classical.section(classifier))
    grid = cfg.classical.grid.section(classifier)
    if grid:  # checked even when search is off, so a typo does not wait for the day it is used
        with component_section(cfg, f"classical.grid.{classifier}"):
            make_search(pipe, grid, cv=predefined_split(1, 1))
    return pipe, (grid if cfg.classical.search else None)


def fit_model(cfg: Config, classifier: str, data: dict, seed: int | None = None):
    """Fit the configured pipeline; returns (fitted pipeline, seconds, best params or None)."""
    from models.classical import make_search, predefined_split

    from pipeline.progress import heartbeat

    pipe, grid = build_classifier(cfg, classifier, seed)
    n, dim = data["x_train"].shape
    what = f"fitting {classifier}{' (grid search)' if grid else ''} on {n:,} images x {dim:,} features"
    start = time.perf_counter()
    with heartbeat(what):
        if grid:
            x = np.concatenate([data["x_train"], data["x_val"]])
            y = np.concatenate([data["y_train"], data["y_val"]])
            search = make_search(pipe, grid, cv=predefined_split(len(data["y_train"]), len(data["y_val"])))
            search.fit(x, y)
            return search.best_estimator_, time.perf_counter() - start, search.best_params_
        pipe.fit(data["x_train"], data["y_train"])
    return pipe, time.perf_counter() - start, None


def save_model(model, dest: Path) -> None:
    """Write the image-in pipeline with skops (:func:`models.classical.load_pipeline` reads it)."""
    from models.classical import dumps

    data = dumps(model)
    with atomic_path(dest, suffix=".skops") as tmp:
        tmp.write_bytes(data)


def class_scores(pipe, x: np.ndarray, n_classes: int) -> tuple[np.ndarray, str]:
    """Per-class scores ``(n, n_classes)`` of a fitted pipeline and their kind (see :func:`labels_and_scores`)."""
    return labels_and_scores(pipe, x, n_classes, need_labels=False)[1:]


def labels_and_scores(pipe, x: np.ndarray, n_classes: int, *, need_labels: bool = True):
    """``(labels, scores, kind)``: per-class scores ``(n, n_classes)`` of a fitted pipeline and their kind,
    and, for an SVC when ``need_labels``, its predicted labels from the same kernel pass
    (:func:`models.classical.svc_one_pass`); ``labels`` is None otherwise.

    ``predict_proba`` when the pipeline has it (``"probability"``: logreg, random forest,
    kNN, an SVC with ``probability=True``), else ``decision_function``
    (``"decision_function"``: LinearSVC, SVC). A binary decision function is one score
    ``d`` per image, positive for ``classes_[1]``; it is written as two columns,
    ``score_<classes_[0]> = -d`` and ``score_<classes_[1]> = d``, so the argmax is still
    the predicted class. Columns follow ``pipe.classes_``: a class absent from the
    training data gets probability 0 or decision score ``-inf``.
    """
    from models.classical import svc_one_pass

    labels = None
    if hasattr(pipe, "predict_proba"):
        raw, kind, fill = pipe.predict_proba(x), "probability", 0.0
    else:
        kind, fill = "decision_function", -np.inf
        one_pass = svc_one_pass(pipe, x) if need_labels else None
        labels, raw = one_pass if one_pass is not None else (None, pipe.decision_function(x))
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 1:
        raw = np.stack([-raw, raw], axis=1)
    classes = np.asarray(pipe.classes_).astype(np.int64)
    if raw.shape != (len(x), len(classes)):
        raise DataError(f"{kind} gave shape {raw.shape} for {len(x)} images of {len(classes)} classes")
    scores = np.full((len(x), n_classes), fill)
    scores[:, classes] = raw
    return labels, scores, kind


def predict_is_argmax(clf) -> bool:
    """Whether ``clf.predict`` is the argmax of its :func:`class_scores` (all registered
    classifiers but the libsvm ones, whose ``predict`` is a one-vs-one vote that can differ
    from the argmax of their one-vs-rest decision function or of Platt's probabilities)."""
    from sklearn.svm import SVC, NuSVC

    return not isinstance(clf, (SVC, NuSVC))


def predict_part(pipe, x: np.ndarray, y: np.ndarray, n_classes: int):
    """The model's predictions of every image of a part, computed once: the rows go through the
    fitted preprocessing steps once, then the classifier gives its per-class scores; the labels
    are their argmax where that is how the classifier predicts, else one ``predict``.

    Returns ``(Predictions, predict_seconds)``: the seconds of that ``predict`` plus the
    preprocessing -- what ``pipe.predict(x)`` costs -- or ``None`` when the labels came from the
    scores (no predict pass to time: :func:`images_per_second` times a sample instead).
    """
    from pipeline.results import Predictions

    start = time.perf_counter()
    transformed = pipe[:-1].transform(x) if len(pipe.steps) > 1 else x
    preprocess = time.perf_counter() - start
    clf = pipe[-1]
    start = time.perf_counter()
    labels, scores, kind = labels_and_scores(clf, transformed, n_classes, need_labels=not predict_is_argmax(clf))
    if labels is not None:  # an SVC: labels and scores from one kernel pass, which is what predict costs
        return Predictions.of(y, labels, scores, kind), preprocess + time.perf_counter() - start
    if predict_is_argmax(clf):
        return Predictions.of(y, scores.argmax(axis=1), scores, kind), None
    start = time.perf_counter()
    y_pred = clf.predict(transformed)
    return Predictions.of(y, y_pred, scores, kind), preprocess + time.perf_counter() - start


def images_per_second(pipe, x: np.ndarray, predict_seconds: float | None, sample: int = THROUGHPUT_SAMPLE) -> float:
    """``pipe.predict`` throughput: from the test pass's own ``predict`` when it had one
    (:func:`predict_part`), else timed on the first ``min(n, sample)`` rows -- a bounded sample,
    so the figure costs little on a large test set and no split is predicted twice."""
    from models.evaluate import time_predict

    if predict_seconds is not None:
        return len(x) / max(predict_seconds, 1e-9)
    _, rate = time_predict(pipe.predict, x[:sample], repeats=1)
    return rate


def extra_seed_data(cfg: Config, feature: str, classifier: str, data: dict) -> list[tuple[int, dict]]:
    """``(seed, data)`` of each extra seed a stochastic model trains with (none for a
    deterministic one): ``data`` with the seed's own matrices when the extractor is stochastic."""
    from pipeline.repeats import classical_is_stochastic, extractor_is_stochastic, matrix_key, seeds

    out = []
    for seed in seeds(cfg.seed, cfg.evaluation.repeats, classical_is_stochastic(feature, classifier))[1:]:
        keys = {f"x_{p}": matrix_key(p, seed) for p in SPLITS} if extractor_is_stochastic(feature) else {}
        if any(key not in data for key in keys.values()):
            raise DataError(f"data/features/{feature}.npz: no matrices for seed {seed} of evaluation.repeats = "
                            f"{cfg.evaluation.repeats}; rerun `cvd features --name {feature}`")
        out.append((seed, data | {plain: data[key] for plain, key in keys.items()}))
    return out


def train_extra_seeds(cfg: Config, classifier: str, seeded: list[tuple[int, dict]]) -> list[dict]:
    """Fit and score the model once per ``(seed, data)``; their scores
    (:func:`pipeline.repeats.seed_scores`), in seed order. ``compare`` logs each as an MLflow run
    nested under the model's (from the metrics' ``per_seed``)."""
    from pipeline.repeats import seed_scores

    scores = []
    for seed, data in seeded:
        pipe, _, _ = fit_model(cfg, classifier, data, seed)
        val_accuracy = np.mean(pipe.predict(data["x_val"]) == data["y_val"])
        scores.append(seed_scores(seed, data["y_test"], pipe.predict(data["x_test"]), val_accuracy,
                                  len(data["class_names"])))
    return scores


def run(cfg: Config, feature: str, classifier: str) -> dict:
    from models.classical import image_pipeline, param_count
    from pipeline.features import load_extractor, load_features
    from pipeline.results import record_model

    check_extractor_name(feature)
    classifiers.check_name(classifier)
    build_classifier(cfg, classifier)  # a bad classical.<classifier> is reported before any data is read
    data = load_features(feature)
    if data["x_train"].shape[0] != len(data["y_train"]):
        raise DataError(f"data/features/{feature}.npz: rows and labels differ; rerun `cvd features --name {feature}`")
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

    dest = ARTIFACT_DIR / f"{mid}.skops"
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

"""A fitted classical pipeline's predictions of a part of the split: per-class scores and their
kind, and labels computed once (from the scores where that is how the classifier predicts).

Used by the ``train_classical`` stage (every validation and test image, once) and by
``cvd predict`` (argmax classifiers take their labels from their scores there too).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from models.classical import svc_one_pass
from models.errors import InputError

THROUGHPUT_SAMPLE = 1000  # test rows timed for predict_images_per_s


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
        raise InputError(f"{kind} gave shape {raw.shape} for {len(x)} images of {len(classes)} classes")
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
    from comparison.predictions import Predictions

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


def classical_scorer(pipe, n_classes: int) -> Callable:
    """``scores(uint8 NHWC images) -> (labels, scores, kind)`` of an image-in classical pipeline
    (``cvd predict``): argmax classifiers take their labels from their scores."""
    def scores(images: np.ndarray):
        transformed, clf = pipe[:-1].transform(images), pipe[-1]
        argmax = predict_is_argmax(clf)  # else an SVC: labels and scores from one kernel pass
        labels, scores, kind = labels_and_scores(clf, transformed, n_classes, need_labels=not argmax)
        if labels is None:
            labels = scores.argmax(axis=1) if argmax else clf.predict(transformed)
        return np.asarray(labels, dtype=np.int64), scores, kind

    return scores


def keras_scorer(model, batch_size: int) -> Callable:
    """``scores(uint8 NHWC images) -> (labels, probabilities, "probability")`` of a Keras model."""
    def scores(images: np.ndarray):
        from models.inputs import scale_images

        probabilities = np.asarray(model.predict(scale_images(images), batch_size=batch_size, verbose=0))
        return np.argmax(probabilities, axis=1), probabilities, "probability"

    return scores

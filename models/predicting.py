"""A fitted classical pipeline's predictions of a part of the split: per-class scores and their
kind, and labels computed once (from the scores where that is how the classifier predicts).

Used by the ``train_classical`` stage (every validation and test image, once) and by
``cvd predict`` (argmax classifiers take their labels from their scores there too).
"""
from __future__ import annotations

import time

import numpy as np

from models.classical import svc_one_pass
from models.errors import InputError


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
    scores (no predict pass to time: :func:`pipeline.train_classical.images_per_second` times a sample instead).
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

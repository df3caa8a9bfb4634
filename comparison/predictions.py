"""The per-image predictions of one model on one part of the split, and their CSV format
(:mod:`pipeline.results` knows where each model's files live and writes them atomically).

``predictions/<id>/<part>.csv``: columns ``index, y_true, y_pred, score_0 .. score_<k-1>``,
one row per image; ``index`` is the row's position in that part of
``data/prepared/split.npz``, so two models' rows pair up by it.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from comparison.errors import ComparisonError

SCORE_KINDS = ("probability", "decision_function")


@dataclass(frozen=True, eq=False)
class Predictions:
    """One model's predictions on one part (val or test) of the prepared split.

    ``index`` is each row's position in that part of ``data/prepared/split.npz`` (so two
    models' rows pair up by it), ``y_true``/``y_pred`` are class indices, ``scores`` is
    ``(n, k)`` with one column per class: class probabilities (``score_kind`` =
    ``"probability"``: predict_proba, softmax) or decision-function scores
    (``"decision_function"``); ``score_kind`` is ``""`` when the model's metrics file does
    not record it. ``y_pred`` is the model's own prediction, which for a decision function
    or a calibrated probability need not be the argmax of ``scores`` on ties.
    """

    index: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    scores: np.ndarray
    score_kind: str = ""

    @classmethod
    def of(cls, y_true, y_pred, scores, score_kind: str) -> "Predictions":
        """Predictions of every image of a part, in split order (index ``0 .. n-1``)."""
        y_true = np.asarray(y_true, dtype=np.int64).ravel()
        return cls(np.arange(len(y_true), dtype=np.int64), y_true, np.asarray(y_pred, dtype=np.int64).ravel(),
                   np.asarray(scores), score_kind)

    def __len__(self) -> int:
        return len(self.y_true)

    @property
    def correct(self) -> np.ndarray:
        """Boolean per image: the prediction is right (what McNemar's test pairs up)."""
        return self.y_true == self.y_pred


SCORE_FORMAT = "%.9g"  # 9 significant digits: every float32 reads back exactly (FLT_DECIMAL_DIG)


def csv_text(predictions: Predictions, dest: Path | str = "predictions") -> str:
    """One predictions CSV (``dest`` names it in errors).

    Columns ``index, y_true, y_pred, score_0 .. score_<k-1>``, one row per image in the
    order given. Scores are stored as float32 written with ``%.9g`` (C formatting: the same
    scores give the same bytes, and reading them back as float32 is exact); a class a
    classifier never saw in training has score 0 (probability) or ``-inf`` (decision
    function). ``score_kind`` is not in the file: the metrics JSON records it.

    Raises:
        ValueError: arrays of different lengths, scores not ``(n, k)``, or an unknown score kind.
    """
    p = predictions
    scores = np.asarray(p.scores, dtype=np.float32)
    n = len(p.y_true)
    if scores.ndim != 2 or scores.shape[1] < 1 or not (len(p.index) == len(p.y_pred) == len(scores) == n):
        raise ValueError(f"{dest}: need index, y_true, y_pred of one length n and scores (n, k); got "
                         f"{len(p.index)}, {n}, {len(p.y_pred)} and {scores.shape}")
    if p.score_kind not in SCORE_KINDS:
        raise ValueError(f"score_kind must be one of {', '.join(SCORE_KINDS)}; got {p.score_kind!r}")
    header = ",".join(["index", "y_true", "y_pred", *(f"score_{j}" for j in range(scores.shape[1]))])
    lines = [header]
    for i, t, y, row in zip(np.asarray(p.index, dtype=np.int64).tolist(), np.asarray(p.y_true).tolist(),
                            np.asarray(p.y_pred).tolist(), scores):
        lines.append(f"{int(i)},{int(t)},{int(y)}," + ",".join(SCORE_FORMAT % v for v in row.tolist()))
    return "\n".join(lines) + "\n"


def read_file(path: Path, stage: str, score_kind: str = "") -> Predictions:
    """Read one predictions CSV back; ``stage`` is the ``dvc repro`` stage that writes it.

    Every problem is one :class:`ComparisonError` line naming the file and the stage: missing
    file, missing columns, no rows, a non-integer label or index, a repeated index, a label
    outside ``score_0 .. score_<k-1>``, a NaN score.
    """
    fix = f"rerun `dvc repro {stage}`"
    if not path.is_file():
        raise ComparisonError(f"{path}: not found (run `dvc repro {stage}`)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = list(reader)
    score_columns = [c for c in header if c.startswith("score_")]
    expected = ["index", "y_true", "y_pred", *(f"score_{j}" for j in range(len(score_columns)))]
    if header != expected or not score_columns:
        raise ComparisonError(f"{path}: columns must be index,y_true,y_pred,score_0..score_<k-1>; got "
                        f"{','.join(header) or 'none'}; {fix}")
    if not rows:
        raise ComparisonError(f"{path}: no rows; {fix}")
    k = len(score_columns)
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ComparisonError(f"{path}: line {number} has {len(row)} fields, the header {len(header)}; {fix}")
    try:
        labels = np.array([r[:3] for r in rows], dtype=np.int64)
    except ValueError as exc:
        raise ComparisonError(f"{path}: index, y_true and y_pred must be integers ({exc}); {fix}") from None
    try:
        scores = np.array([r[3:] for r in rows], dtype=np.float32).astype(np.float64)
    except ValueError as exc:
        raise ComparisonError(f"{path}: scores must be numbers ({exc}); {fix}") from None
    index, y_true, y_pred = labels[:, 0], labels[:, 1], labels[:, 2]
    if index.min() < 0 or len(np.unique(index)) != len(index):
        raise ComparisonError(f"{path}: index must be distinct positions >= 0; {fix}")
    bad = labels[:, 1:][(labels[:, 1:] < 0) | (labels[:, 1:] >= k)]
    if bad.size:
        raise ComparisonError(f"{path}: label {int(bad[0])} outside the {k} score columns; {fix}")
    if np.isnan(scores).any():
        raise ComparisonError(f"{path}: NaN score; {fix}")
    return Predictions(index, y_true, y_pred, scores, score_kind)

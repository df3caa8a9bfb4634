"""Where the best classical and the best deep model differ, image by image: the analysis
behind ``explain``'s files (pure functions over both models' test predictions)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from comparison.errors import ComparisonError
from comparison.predictions import Predictions


def aligned(classical: Predictions, deep: Predictions, names: tuple[str, str]) -> tuple[Predictions, Predictions]:
    """Both models' test predictions in split order; :class:`ComparisonError` unless they cover the
    same images with the same labels."""
    def ordered(p: Predictions) -> Predictions:
        order = np.argsort(p.index, kind="stable")
        return Predictions(p.index[order], p.y_true[order], p.y_pred[order], p.scores[order], p.score_kind)

    a, b = ordered(classical), ordered(deep)
    if not np.array_equal(a.index, b.index) or not np.array_equal(a.y_true, b.y_true):
        raise ComparisonError(f"predictions/{names[0]}/test.csv and predictions/{names[1]}/test.csv cover different "
                              f"test images or labels; rerun `dvc repro` so both use the current split")
    return a, b


def disagreements(classical: Predictions, deep: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """Split positions of the test images only the classical model gets right, and of those
    only the deep model gets right (aligned predictions)."""
    c, d = classical.correct, deep.correct
    return classical.index[c & ~d], classical.index[d & ~c]


def per_class(classical: Predictions, deep: Predictions, class_names: Sequence[str]) -> list[dict]:
    """Per class: test images, each model's accuracy on them, and deep - classical."""
    rows = []
    for k, name in enumerate(class_names):
        mine = classical.y_true == k
        n = int(mine.sum())
        acc_c = float(classical.correct[mine].mean()) if n else float("nan")
        acc_d = float(deep.correct[mine].mean()) if n else float("nan")
        rows.append({"class": name, "n_test": n, "classical_accuracy": round(acc_c, 6),
                     "deep_accuracy": round(acc_d, 6), "difference": round(acc_d - acc_c, 6)})
    return rows


def confidence(p: Predictions) -> np.ndarray:
    """Each image's score of the class the model predicted."""
    return p.scores[np.arange(len(p)), p.y_pred]


def confident_mistakes(p: Predictions, count: int) -> np.ndarray:
    """Rows (positions in ``p``) of the ``count`` wrong predictions with the highest score."""
    wrong = np.flatnonzero(~p.correct)
    order = np.lexsort((p.index[wrong], -confidence(p)[wrong]))
    return wrong[order][:count]


def confusion(p: Predictions, n_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]``."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (p.y_true, p.y_pred), 1)
    return counts


def class_names_for(names: Sequence[str], n_scores: int) -> list[str]:
    return list(names) + [str(k) for k in range(len(names), n_scores)]


def pictures_to_draw(only_c: np.ndarray, only_d: np.ndarray, n_test: int, count: int, seed: int) -> list[int]:
    """Up to ``count`` test positions: disagreements first (alternating), then seeded picks."""
    chosen: list[int] = []
    for pair in zip(list(only_c) + [None] * len(only_d), list(only_d) + [None] * len(only_c)):
        chosen += [int(i) for i in pair if i is not None and int(i) not in chosen]
    rest = [int(i) for i in np.random.default_rng(seed).permutation(n_test) if int(i) not in chosen]
    return (chosen + rest)[:count]

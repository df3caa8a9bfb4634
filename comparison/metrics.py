"""Which score ranks the leaderboard, selects on validation and decides the verdict
(params.yaml ``evaluation.metric``).

``accuracy`` counts images; ``balanced_accuracy`` (mean per-class recall) weighs every class
the same, so on a 1:20 data set a model that always answers the majority class scores 50 %,
not 95 %. ``auto`` picks balanced accuracy when the training split's largest class has at
least :data:`IMBALANCE_RATIO` times the images of its smallest, accuracy otherwise (the
digits default, 124 : 118 images, keeps accuracy and McNemar's test).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from comparison.errors import ComparisonError

METRICS = ("accuracy", "balanced_accuracy")
SETTINGS = ("auto", *METRICS)
IMBALANCE_RATIO = 1.5  # largest / smallest training class at which `auto` balances
LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy"}


@dataclass(frozen=True)
class Metric:
    """The chosen metric, how (``setting``) and on which class sizes (``ratio``: largest /
    smallest class of the ``counted`` images, None when unknown)."""

    name: str = "accuracy"
    setting: str = "accuracy"
    ratio: float | None = None
    counted: str = "training"

    @property
    def label(self) -> str:
        """``balanced accuracy``: the name as printed."""
        return LABELS[self.name]

    @property
    def test_key(self) -> str:
        """The leaderboard row's test score of this metric."""
        return "test_accuracy" if self.name == "accuracy" else self.name

    @property
    def val_key(self) -> str:
        """The leaderboard row's validation score of this metric, which selects the verdict's models."""
        return f"val_{self.name}"

    @property
    def selection(self) -> str:
        """``validation balanced accuracy``: how the best model of each approach is chosen."""
        return f"validation {self.label}"

    @property
    def statement(self) -> str:
        """``metric: balanced accuracy (auto, training classes 1:20)``: the verdict's last words."""
        how = "auto" if self.setting == "auto" else "evaluation.metric"
        classes = "" if self.ratio is None else f", {self.counted} classes 1:{self.ratio:.3g}"
        return f"metric: {self.label} ({how}{classes})"

    def fields(self) -> dict:
        """summary.json's ``metric`` object."""
        ratio = None if self.ratio is None else round(self.ratio, 6)
        return {"name": self.name, "setting": self.setting, "class_ratio": ratio, "counted": self.counted,
                "statement": self.statement}

    @classmethod
    def of_summary(cls, summary: dict) -> "Metric":
        """The metric a summary.json was decided on (accuracy for one written before it said)."""
        fields = summary.get("metric") or {}
        name = fields.get("name") if fields.get("name") in METRICS else "accuracy"
        return cls(name, str(fields.get("setting") or name), fields.get("class_ratio"),
                   str(fields.get("counted") or "training"))


def class_ratio(counts: Iterable[int]) -> float:
    """Largest / smallest of the class counts (``inf`` when a class has none)."""
    counts = [int(c) for c in counts]
    if len(counts) < 2:
        raise ComparisonError(f"class counts: need at least 2 classes to weigh; got {counts}")
    return float("inf") if min(counts) == 0 else max(counts) / min(counts)


def choose_metric(setting: str, counts: Iterable[int] | None, counted: str = "training") -> Metric:
    """The metric ``setting`` (:data:`SETTINGS`) means for these class counts: ``auto`` is
    balanced accuracy when :func:`class_ratio` >= :data:`IMBALANCE_RATIO`, else accuracy (also
    when no counts are known). ``counted`` names the images counted, for the statement."""
    if setting not in SETTINGS:
        raise ComparisonError(f"evaluation.metric = {setting!r}: must be one of {', '.join(SETTINGS)}")
    ratio = None if counts is None else class_ratio(counts)
    if setting == "auto":
        name = "balanced_accuracy" if ratio is not None and ratio >= IMBALANCE_RATIO else "accuracy"
    else:
        name = setting
    return Metric(name, setting, ratio, counted)

"""One model's own figure: its test confusion matrix as a PNG (the CNN stage writes it, ``compare``
draws a classical model's for its MLflow run)."""
from __future__ import annotations

import io
from typing import Sequence


def confusion_png_bytes(confusion, class_names: Sequence[str], model_id: str, test_accuracy: float) -> bytes:
    """One model's test confusion matrix drawn as a PNG (:func:`models.evaluate.plot_confusion`)."""
    from models.evaluate import plot_confusion

    figure = plot_confusion(confusion, class_names, f"{model_id}: test accuracy {test_accuracy:.4f}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()

"""The CNNs' input convention, shared by training and prediction (and nothing else, so a stage
that only predicts does not depend on the training code)."""
from __future__ import annotations

from typing import Any


def scale_images(x: Any) -> Any:
    """uint8 images -> float32 in [0, 1] (the models' input)."""
    import numpy as np

    out = np.asarray(x).astype(np.float32)
    out /= np.float32(255.0)
    return out

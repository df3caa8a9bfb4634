"""Handcrafted image features as scikit-learn transformers (uint8 image batch -> float32 matrix).

Importing this package is cheap: the extractors (and cv2, scikit-learn, joblib)
are imported only when one is asked for by name.

- ``raw``: ``features.raw.RawPixels``, pixels / 255 (the baseline);
- ``sobel``: ``features.sobel.SobelFeatures``, cell histograms of Sobel orientations;
- ``hog``: ``features.hog.HOGFeatures``, HOG equal to ``skimage.feature.hog``;
- ``sift``: ``features.sift.SIFTFeatures``, bag of visual words over SIFT descriptors.

``features.conv`` holds the lecture's convolution arithmetic (not an extractor).
"""
from __future__ import annotations

import importlib
import inspect

from pipeline.errors import ConfigError

REGISTRY: dict[str, str] = {
    "raw": "features.raw:RawPixels",
    "sobel": "features.sobel:SobelFeatures",
    "hog": "features.hog:HOGFeatures",
    "sift": "features.sift:SIFTFeatures",
}


def get_extractor_class(name: str) -> type:
    """The extractor class registered as ``name`` (imported on demand)."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown feature extractor {name!r}; allowed: {', '.join(sorted(REGISTRY))}")
    module, _, attribute = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_extractor(name: str, **params: object):
    """Build the extractor ``name`` from its params.yaml section, checking names and values.

    Raises ConfigError on an unknown extractor, an unknown parameter (listing the allowed
    ones) or an invalid value, before any data is touched.
    """
    cls = get_extractor_class(name)
    allowed = sorted(inspect.signature(cls).parameters)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise ConfigError(
            f"features.{name}: unknown {noun} {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
        )
    extractor = cls(**params)
    extractor._check_params()
    return extractor

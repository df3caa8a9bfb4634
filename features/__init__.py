"""Handcrafted image features as scikit-learn transformers (uint8 image batch -> float32 matrix).

The extractors are discovered, not listed: every module ``features/extractors/<name>.py``
is the extractor ``<name>`` (configured by the params.yaml section ``features.<name>``)
and defines ``EXTRACTOR = Extractor(transformer=..., citation=..., summary=...)``, with
``draw=...`` when it can draw what it computes (``cvd visualize`` and the report show it).
Adding an extractor is adding one such module (plus its params.yaml section).

Importing this package is cheap: no numpy, cv2 or scikit-learn. :func:`extractor_names`
only lists the modules and :func:`check_extractor_name` checks a name against them;
:func:`get_extractor` imports one when it is asked for by name.

``features.conv`` holds the lecture's convolution arithmetic (not an extractor);
``features._batch`` the machinery the extractors share.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from features.errors import ParameterError


@dataclass(frozen=True)
class Extractor:
    """One registered extractor: its transformer class, what ``cvd describe`` says of it and,
    optionally, its drawing.

    ``draw(extractor, image, features=None) -> {stem: matplotlib Figure}`` draws what the
    transformer instance ``extractor`` computes from one uint8 image, ``(H, W)`` or
    ``(H, W, 3)``, in the manner of scikit-learn's ``Display.from_estimator``: ``extractor``
    is built from the params.yaml section ``features.<name>`` and is fitted when it could
    be (the one ``features@<name>`` saved, or one fitted on the split's training images), so
    a drawing that needs the fitted state checks for it; ``features`` is the image's row of
    ``features@<name>``'s matrix when one was stored, else None. Each stem names a picture
    file (``<image>/<stem>.png`` in ``cvd visualize`` and the report), unique among the
    extractors: the extractor's name, or a name of its own. Build figures
    with :class:`matplotlib.figure.Figure` (no pyplot) and import what only the drawing needs
    inside ``draw``: the features stage never draws, and ``pipeline/code_graph.py`` counts
    the imports inside a module-level function named ``draw`` as the drawing stages' only.

    ``name`` is set by the registry (the module name); an extractor module leaves it out.
    """

    transformer: type
    citation: str
    summary: str
    draw: Callable[..., Mapping[str, Any]] | None = None
    name: str = ""

    def parameters(self) -> tuple[str, ...]:
        """The transformer's constructor parameter names, in signature order."""
        return tuple(inspect.signature(self.transformer).parameters)


def extractor_names() -> tuple[str, ...]:
    """Names of the extractor modules in ``features/extractors`` (sorted; none imported)."""
    import features.extractors as package

    return tuple(sorted(
        module.name for module in pkgutil.iter_modules(package.__path__) if not module.name.startswith("_")
    ))


def check_extractor_name(name: str) -> str:
    """``name`` if it is a registered extractor (nothing imported), else ParameterError listing them.

    The one check of an extractor name: params.yaml's config, the CLI and the stages call it.
    """
    names = extractor_names()
    if name not in names:
        raise ParameterError(f"unknown feature extractor {name!r}; allowed: {', '.join(names)}")
    return name


def get_extractor(name: str) -> Extractor:
    """The extractor ``name``, importing ``features.extractors.<name>``.

    Raises ParameterError, listing the allowed names, when there is no such module.
    """
    check_extractor_name(name)
    module = importlib.import_module(f"features.extractors.{name}")
    entry = getattr(module, "EXTRACTOR", None)
    if not isinstance(entry, Extractor):  # a programming error in the module, not a user mistake
        raise TypeError(f"{module.__file__} must define EXTRACTOR = Extractor(transformer=..., ...)")
    return replace(entry, name=name)


def make_extractor(name: str, **params: object):
    """A transformer instance of extractor ``name`` with ``params`` (its params.yaml section).

    Raises ParameterError on an unknown extractor, an unknown parameter (naming the
    allowed ones) or an invalid value, before any image is touched.
    """
    extractor = get_extractor(name)
    allowed = sorted(extractor.parameters())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise ParameterError(
            f"{extractor.transformer.__name__}: unknown {noun} {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed)}"
        )
    instance = extractor.transformer(**params)
    instance._check_params()
    return instance


def drawing_names(configured: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The extractors that provide a drawing (``Extractor.draw``), importing every extractor
    module: the ``configured`` ones first, in that order, then the others by name."""
    order = dict.fromkeys([*configured, *extractor_names()])
    return [name for name in order if get_extractor(name).draw is not None]

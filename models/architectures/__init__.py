"""The CNN registry: one module per architecture, found by its file name.

Adding an architecture is one new module here plus its params.yaml section, no other edit:

* the module name is the architecture's name, the ``--arch`` value and the params.yaml
  section ``cnn.<name>`` (``lenet5.py`` -> ``cnn.lenet5``);
* the module defines its spec function,
  ``spec(input_shape=..., num_classes=..., <arch params>) -> tuple[models.cnn.Layer, ...]``,
  which checks its arguments (raising :class:`models.errors.ParameterError`) and returns the
  layers, the first a :class:`models.cnn.Input`; every argument has a default, which is what
  ``cvd describe`` draws;
* and a module-level ``ARCHITECTURE = models.cnn.Architecture(spec=spec, citation=...,
  summary=..., [resolve_defaults=..., lecture_notes=...])``.

The spec's arguments other than ``input_shape``/``num_classes`` are the ones params.yaml
``cnn.<name>`` may set; its sub-section ``cnn.<name>.train`` holds the training overrides
(epochs, batch_size, learning_rate; null = the shared ``cnn`` value).

Listing the names imports none of the modules (so a stage for one architecture runs only
that architecture's code), and neither imports Keras.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import TYPE_CHECKING

from models.errors import ParameterError

if TYPE_CHECKING:  # models.cnn is the architectures' code, not the registry's
    from models.cnn import Architecture


def names() -> tuple[str, ...]:
    """The registered architectures, sorted: the modules of this package not starting with "_"."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


def check_name(name: str) -> str:
    """``name`` if there is an architecture module of that name (none imported): the one check
    of an architecture name, which params.yaml's config, the CLI and the stages call.

    Raises:
        ParameterError: no module of that name; the message lists the registered ones.
    """
    known = names()
    if name not in known:
        raise ParameterError(f"unknown architecture {name!r}; allowed: {', '.join(known)}")
    return name


def get(name: str) -> Architecture:
    """The architecture ``name`` (its module imported now, after :func:`check_name`), with ``name`` set."""
    check_name(name)
    module = importlib.import_module(f"{__name__}.{name}")
    return dataclasses.replace(module.ARCHITECTURE, name=name)

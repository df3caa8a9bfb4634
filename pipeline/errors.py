"""Project errors: a user mistake raises one of these; the CLI prints one line and exits 2.

``ConfigError`` and ``DataError`` subclass ``ValueError`` so the pure code in ``features/`` and ``models/`` keeps the
scikit-learn convention (bad parameter -> ValueError) while the CLI can tell a user
mistake from a bug (anything else keeps its traceback).
"""
from __future__ import annotations

import contextlib
from typing import Iterator


class CvdError(Exception):
    """Base class of every error caused by the user's input, not by a bug."""

    exit_code = 2


class ConfigError(CvdError, ValueError):
    """A bad value in params.yaml, a CLI option, or an estimator/extractor parameter."""


class DataError(CvdError, ValueError):
    """Bad input data: missing or corrupt files, wrong array dtype/rank/size."""


class OutputError(CvdError):
    """An output that cannot be written: a full disk, a read-only folder, no permission."""


@contextlib.contextmanager
def component_section(source: str, section: str) -> Iterator[None]:
    """Re-raise a component's ParameterError (``features``/``models``) as the ConfigError
    ``<source>: <section>: <message>``: the params file and section that set the bad value."""
    from features.errors import ParameterError as FeatureParameterError
    from models.errors import ParameterError as ModelParameterError

    try:
        yield
    except (FeatureParameterError, ModelParameterError) as exc:
        raise ConfigError(f"{source}: {section}: {' '.join(str(exc).split())}") from None

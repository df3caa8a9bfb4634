"""Errors of the models package: a caller's mistake, never a bug.

Both are ``ValueError`` subclasses (scikit-learn's convention for a bad parameter); the
``cvd`` command line turns them into one line and exit code 2.
"""


class ModelError(ValueError):
    """Base class of every error caused by the caller's input to ``models``."""


class ParameterError(ModelError):
    """An unknown classifier/architecture/argument, or an invalid value."""


class InputError(ModelError):
    """Labels, predictions or data the model code cannot use (wrong length, range or shape)."""

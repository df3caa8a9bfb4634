"""Errors of the features package: a caller's mistake, never a bug.

Both are ``ValueError`` subclasses (scikit-learn's convention for a bad parameter), so
code that knows nothing of this package can still catch them; the ``cvd`` command line
turns them into one line and exit code 2.
"""


class FeatureError(ValueError):
    """Base class of every error caused by the caller's input to ``features``."""


class ParameterError(FeatureError):
    """An unknown extractor, an unknown parameter or an invalid parameter value."""


class ImageError(FeatureError):
    """Images of the wrong dtype, rank, channel count or size, or too few to fit on."""

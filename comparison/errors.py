"""The comparison library's error: results that cannot be compared as they are.

A :class:`models.errors.ModelError` (a ``ValueError``), so the ``cvd`` command line prints it
as one line with exit code 2, like the other library layers' errors.
"""
from models.errors import ModelError


class ComparisonError(ModelError):
    """Models trained on different splits, a missing value a comparison needs, prediction
    files that do not pair up: the user reruns a stage, nothing is wrong with the code."""

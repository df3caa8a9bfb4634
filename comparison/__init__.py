"""The comparison library: how models are scored, ranked, selected, compared and drawn.

Pure functions and data classes over per-model results (no paths, no MLflow, nothing from
``pipeline/``); the ``train_*``, ``compare`` and ``explain`` stages read the files, call this
and write what it returns:

* :mod:`comparison.predictions`  per-image predictions and their CSV format
* :mod:`comparison.results`      a model's scores (with intervals) and its leaderboard row
* :mod:`comparison.metrics`      which score ranks, selects and decides (accuracy or balanced accuracy)
* :mod:`comparison.repeats`      the seeds of a stochastic model and their summary
* :mod:`comparison.leaderboard`  ranking, selection on validation, the summary; :mod:`comparison.tables`
* :mod:`comparison.statistics`   the paired tests behind the leaderboard and the verdict
* :mod:`comparison.verdict`      the verdict in words
* :mod:`comparison.figures`      compare's figures (:mod:`comparison.plots`, :mod:`comparison.confusion`);
  :mod:`comparison.model_plot`   one model's confusion PNG
* :mod:`comparison.explain`      where two models differ; :mod:`comparison.explain_figures` draws it

Errors are :class:`comparison.errors.ComparisonError` (a ``ValueError``).
"""

"""The extractors, one module per extractor, found by ``features.extractor_names()``.

The module name is the extractor's name: ``--name`` of ``cvd features``, an entry of
params.yaml ``features.names`` and the params.yaml section ``features.<name>`` that holds
its constructor arguments. Modules whose name starts with ``_`` are not extractors.

Each module must define:

* a transformer class, a subclass of ``features._batch.ImageFeatureExtractor``
  (scikit-learn conventions: the constructor only stores its arguments; ``_check_params``
  raises ``features.errors.ParameterError``; ``_transform_chunk`` maps a uint8
  ``(n, H, W)`` chunk to a float32 ``(n, D)`` block);
* ``EXTRACTOR = Extractor(transformer=<the class>, citation="...", summary="...")``, with
  ``Extractor`` from ``features`` (the registry sets its ``name``).

This package's ``__init__`` imports none of them: listing the extractors stays cheap.
"""

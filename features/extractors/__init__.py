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
  ``Extractor`` from ``features`` (the registry sets its ``name``);
* optionally a drawing, ``draw=<function>`` in ``EXTRACTOR``:
  ``draw(extractor, image, features=None) -> {stem: matplotlib Figure}`` (see
  ``features.Extractor``), which ``cvd visualize`` and the report's ``explain`` stage call for
  every registered extractor. What only the drawing needs is imported inside ``draw``; longer
  drawing code may live in a sibling module the extractor owns, ``_<name>_drawing.py``.

This package's ``__init__`` imports none of them: listing the extractors stays cheap.
"""

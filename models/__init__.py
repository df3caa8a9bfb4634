"""Classifiers, CNN architectures, training, evaluation: pure code that never imports `pipeline`."""

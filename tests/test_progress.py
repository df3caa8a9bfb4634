"""pipeline.progress.heartbeat: long fits say they are alive; short ones stay silent."""
from __future__ import annotations

import io
import re
import time

import pytest

from pipeline.progress import heartbeat


def test_a_long_block_beats_until_it_ends():
    out = io.StringIO()
    with heartbeat("fitting rbf_svm on 51,000 images x 100 features", every=0.05, stream=out):
        time.sleep(0.32)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3
    assert all(re.fullmatch(r"fitting rbf_svm on 51,000 images x 100 features: still running after \d+ s", line)
               for line in lines)
    time.sleep(0.15)
    assert out.getvalue().splitlines() == lines  # nothing after the block ended


def test_a_short_block_prints_nothing():
    out = io.StringIO()
    with heartbeat("fitting logreg", every=5.0, stream=out):
        pass
    assert out.getvalue() == ""


def test_the_block_error_passes_through_and_the_beat_stops():
    out = io.StringIO()
    with pytest.raises(ValueError, match="bad fit"):
        with heartbeat("fitting knn", every=0.05, stream=out):
            time.sleep(0.12)
            raise ValueError("bad fit")
    seen = out.getvalue()
    time.sleep(0.15)
    assert out.getvalue() == seen

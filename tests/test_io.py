"""Atomic outputs: complete files only, normal permissions, no temporary left behind."""
from __future__ import annotations

import os
import stat

import pytest

from pipeline.io import atomic_path, read_json, write_json


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_get_the_permissions_the_umask_gives_new_files(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_json(tmp_path / "out.json", {"a": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == mode
    assert read_json(tmp_path / "out.json") == {"a": 1}


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    dest = tmp_path / "out.json"
    write_json(dest, {"old": True})
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("stage failed")
    assert read_json(dest) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]

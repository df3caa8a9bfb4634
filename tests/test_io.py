"""Atomic outputs: complete files only, normal permissions, no temporary left behind."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

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


def test_a_killed_writers_temporary_file_goes_with_the_next_write(tmp_path):
    """A SIGKILL leaves ``.<name>.<pid>-<hex><suffix>``; the next write of that file removes it,
    not a live writer's, nor another file's."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan, alive, other = (tmp_path / f".{name}.{pid}-0123456789ab.json"
                            for name, pid in (("out.json", dead.pid), ("out.json", os.getpid()),
                                              ("other.json", dead.pid)))
    for path in (orphan, alive, other):
        path.write_text("half")
    write_json(tmp_path / "out.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.json", alive.name, other.name])

"""A throwaway git copy of this repository's working tree, for running real DVC in it.

Plain Python (no pytest), so ``benchmarks/pipeline.py`` uses it too.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# what a run produces: a copy starts without it, as a fresh clone would after `make clean-outputs`
OUTPUTS = ("data/", "metrics/", "plots/", "reports/", "artifacts/")


def copy_repo(dest: Path, skip: tuple[str, ...] = OUTPUTS) -> Path:
    """A fresh git repo at ``dest`` holding the project's files (tracked + new, not ignored),
    except the paths starting with one of ``skip``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=REPO_ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO_ROOT / rel
        if src.is_file() and not rel.startswith(skip):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.email=copy@example.invalid", "-c", "user.name=copy"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest

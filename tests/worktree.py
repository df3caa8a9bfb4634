"""A throwaway git copy of this repository's working tree, for running real DVC in it.

Plain Python (no pytest); ``small_run`` and the tests that change a finished run use it.
"""
from __future__ import annotations

import contextlib
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


def copy_finished_repo(src: Path, dest: Path) -> Path:
    """A copy of a repository after its ``dvc repro`` (git history, outputs, ``dvc.lock``, DVC cache,
    MLflow store), so an incremental ``dvc repro`` / ``dvc exp run`` in ``dest`` reruns only what
    changes there. The MLflow store's absolute paths (experiment and run artifact locations,
    model sources) are rewritten from ``src`` to ``dest``: the copy logs into its own folder."""
    import sqlite3

    shutil.copytree(src, dest, symlinks=True)
    db = dest / "mlflow.db"
    if db.is_file():
        old, new = str(src.resolve()), str(dest.resolve())
        with contextlib.closing(sqlite3.connect(db)) as con, con:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for column in con.execute(f'PRAGMA table_info("{table}")').fetchall():
                    name, kind = column[1], (column[2] or "").upper()
                    if "CHAR" in kind or "TEXT" in kind:
                        con.execute(f'UPDATE "{table}" SET "{name}" = replace("{name}", ?, ?) '
                                    f'WHERE "{name}" LIKE ?', (old, new, f"%{old}%"))
    return dest

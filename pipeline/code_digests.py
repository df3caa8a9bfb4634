"""DVC stage ``code_digests``: which project code each stage runs, as one small file per stage.

``code_digests/<stage>.txt`` (``code_digests/<stage>/<item>.txt`` for each component of a stage
whose item names one: ``features/hog.txt``, ``train_cnn/lenet5.txt``) lists the SHA-256 and
path of every project file the stage runs (:func:`pipeline.code_graph.stage_code`), one per line
as ``sha256sum`` writes them (``sha256sum -c code_digests/explain.txt`` checks them).

Every other stage depends on its own file instead of listing its ~30 source files in dvc.yaml.
This stage depends on the project's packages and reruns on any edit, in about a second; a file
changes only when code its stage runs changed, so exactly those stages rerun, and an import
added to a module needs no edit of dvc.yaml. It also keeps ``dvc.lock`` short: DVC rewrites the
whole lock after every stage, at a cost that grows with its length (docs/pipeline.md).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline import layout
from pipeline.code_graph import code_units, stage_code
from pipeline.io import write_files


def listing(files: set[str], sha256: dict[str, str]) -> bytes:
    """``<sha256>  <path>`` for each file, sorted by path."""
    return "".join(f"{sha256[f]}  {f}\n" for f in sorted(files)).encode("utf-8")


def digests(root: Path) -> dict[Path, bytes]:
    """Each stage's file (relative to ``root``) and its content."""
    parsed: dict = {}  # every file is parsed, and hashed, once for all the stages
    code = {unit: stage_code(unit, root, parsed) for unit in code_units(root)}
    sha256 = {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in set().union(*code.values())}
    return {layout.code_digest_path(unit): listing(files, sha256) for unit, files in code.items()}


def run(root: Path = Path(".")) -> list[Path]:
    """Write every stage's file under ``root`` and remove those of components that are gone;
    returns the files written."""
    files = digests(root)
    write_files({root / path: content for path, content in files.items()})
    for old in (root / layout.CODE_DIGESTS_DIR).rglob("*.txt"):
        if old.relative_to(root) not in files:
            old.unlink()
    return sorted(files)

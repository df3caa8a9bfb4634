"""The tests' view of the project's import graph (:mod:`pipeline.code_graph`, which the
``code_digests`` stage uses) with the repository as the default root, what DVC makes of
dvc.yaml, and the depth of the graph inside ``pipeline/``.

``python tests/import_graph.py --depth`` prints the longest import chain inside ``pipeline/``
(:func:`longest_chain`); without ``--depth``, each stage's code (what ``code_digests/`` lists).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pipeline import code_graph
from pipeline.code_graph import PACKAGES, code_units  # noqa: F401  (re-exported for the tests)

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINT = "pipeline/cli.py"


def direct_imports(path: str, root: Path = REPO_ROOT, drawing: bool = True) -> set[str]:
    return code_graph.direct_imports(path, root, drawing)


def closure(starts: set[str], root: Path = REPO_ROOT, drawing: bool = True) -> set[str]:
    return code_graph.closure(starts, root, drawing)


def stage_code(address: str, root: Path = REPO_ROOT) -> set[str]:
    return code_graph.stage_code(address, root)


def resolved_stages(root: Path = REPO_ROOT) -> dict[str, list[str]]:
    """Every stage of ``root``'s dvc.yaml as DVC expands foreach/matrix with params.yaml: address -> deps."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {stage.name: [dep.def_path for dep in stage.deps] for stage in repo.index.stages}


def stages_importing(path: str, addresses: list[str], root: Path = REPO_ROOT) -> set[str]:
    """The stages (of ``addresses``, ``code_digests`` aside) whose code includes ``path``."""
    return {a for a in addresses if a != "code_digests" and path in stage_code(a, root)}


# modules that import no pipeline module but one another and that every level uses: the error types, the
# output layout, the MLflow store, and config.py's own two parts (its schema types and its error words)
SHARED_LEAVES = ("pipeline/errors.py", "pipeline/layout.py", "pipeline/store.py", "pipeline/config_schema.py",
                 "pipeline/config_errors.py")


def longest_chain(start: str = ENTRY_POINT, skip: tuple[str, ...] = (), root: Path = REPO_ROOT) -> list[str]:
    """The longest chain of ``pipeline/`` modules imported from ``start`` (package ``__init__``
    files and the modules in ``skip`` not counted): its length is the depth of the import graph."""
    @lru_cache(maxsize=None)
    def longest(path: str) -> tuple[str, ...]:
        below = [longest(f) for f in direct_imports(path, root)
                 if f.startswith("pipeline/") and not f.endswith("__init__.py") and f not in skip]
        return (path, *max(below, key=len, default=()))

    return list(longest(start))


def main() -> None:
    import sys

    if "--depth" in sys.argv[1:]:
        for label, skip in (("every module", ()), (f"without {', '.join(SHARED_LEAVES)}", SHARED_LEAVES)):
            chain = longest_chain(skip=skip)
            print(f"{len(chain)} ({label}): {' -> '.join(Path(f).stem for f in chain)}")
        return
    for unit in code_units(REPO_ROOT):
        print(f"{unit}:")
        for f in sorted(stage_code(unit)):
            print(f"  - {f}")


if __name__ == "__main__":
    main()

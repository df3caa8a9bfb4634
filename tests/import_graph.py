"""The project's import graph, read from the source with ``ast`` (nothing is imported).

Every ``import`` counts, at module level or inside a function (a stage that may call a
function may run its imports), except under ``if TYPE_CHECKING:``, which never runs. Importing ``a.b.c`` runs ``a/__init__.py`` and
``a/b/__init__.py`` first, so those count too.

A DVC stage runs ``cvd <command>``; ``pipeline/cli.py`` only parses options and hands over
to the stage module of the same name (stage ``train_cnn`` -> ``pipeline/train_cnn.py``), so
a stage's code is that module plus everything it imports, transitively. The registries
import the component a stage item names by name (``importlib``), which ``ast`` cannot
see: ``features@hog`` also runs ``features/extractors/hog.py``, ``train_cnn@lenet5``
``models/architectures/lenet5.py``.

Drawing: ``explain`` draws every registered extractor that provides a drawing (the hook
``features.Extractor.draw``), so it runs every module of ``features/extractors``, and dvc.yaml
lists that folder as one dependency (:func:`code_deps` reads it as its modules): a new
extractor is covered without editing dvc.yaml. The imports inside an extractor module's
``draw`` function (its drawing code) run only where drawings are made; they are not the
``features`` stage's, which never draws.

``python tests/import_graph.py`` prints each stage's code dependencies as dvc.yaml lists
them, for a maintainer updating dvc.yaml after adding an import; ``--depth`` prints the longest
import chain inside ``pipeline/`` (:func:`longest_chain`).
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "features", "models", "comparison")
ENTRY_POINT = "pipeline/cli.py"
# stage -> (folder of the component its item names, or None)
STAGE_COMPONENTS = {
    "prepare": None,
    "features": "features/extractors",
    "train_classical": None,
    "train_cnn": "models/architectures",
    "compare": None,
    "learning_curve": None,
    "explain": None,
}
# stage -> the component folder every module of which it runs (it draws every registered extractor)
# (learning_curve retrains whichever architecture compare chose, so it may run any of them)
STAGE_ALL_COMPONENTS = {"explain": "features/extractors", "learning_curve": "models/architectures"}
DRAWING_HOOK = "draw"  # an extractor module's drawing function; its imports are the drawing stages' only


def module_file(module: str, root: Path = REPO_ROOT) -> str | None:
    """The project file that defines ``module`` (repo-relative), or None if it is not ours."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py").relative_to(root).as_posix()
    if (base / "__init__.py").is_file():
        return (base / "__init__.py").relative_to(root).as_posix()
    return None


def _with_parents(module: str, root: Path) -> set[str]:
    """The files Python runs to import ``module``: every parent package's __init__ and the module."""
    parts = module.split(".")
    files = {module_file(".".join(parts[: i + 1]), root) for i in range(len(parts))}
    return {f for f in files if f}


def _package_of(path: str) -> str:
    rel = Path(path).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    else:
        parts = parts[:-1]
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST, skip_drawing: bool = False):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``, which never runs, and,
    with ``skip_drawing``, those inside a module-level ``def draw`` (the drawing hook)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if skip_drawing and node is tree and isinstance(child, ast.FunctionDef) and child.name == DRAWING_HOOK:
                continue
            test = child.test if isinstance(child, ast.If) else None
            if test is not None and ast.unparse(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _is_drawn_component(path: str) -> bool:
    return any(Path(path).parent.as_posix() == folder for folder in STAGE_ALL_COMPONENTS.values())


def direct_imports(path: str, root: Path = REPO_ROOT, drawing: bool = True) -> set[str]:
    """Project files that the source of ``path`` imports anywhere in it (``if TYPE_CHECKING:``
    blocks excepted; without ``drawing``, an extractor module's ``draw`` function too)."""
    tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=path)
    found: set[str] = set()
    for node in _runtime_nodes(tree, skip_drawing=not drawing and _is_drawn_component(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found |= _with_parents(alias.name, root)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(path).split(".")
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found |= _with_parents(module, root)
            for alias in node.names:  # `from pipeline import compare` imports a submodule
                sub = module_file(f"{module}.{alias.name}", root)
                if sub and sub != module_file(module, root):
                    found |= _with_parents(f"{module}.{alias.name}", root)
    found.discard(path)
    return found


def closure(starts: set[str], root: Path = REPO_ROOT, drawing: bool = True) -> set[str]:
    """``starts`` and every project file they import, transitively (without ``drawing``, not
    through the extractors' ``draw`` functions)."""
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(direct_imports(path, root, drawing) - seen)
    return seen


def folder_modules(folder: str, root: Path = REPO_ROOT) -> set[str]:
    """The Python modules directly in ``folder`` (repo-relative)."""
    return {p.relative_to(root).as_posix() for p in (root / folder).glob("*.py")}


@lru_cache(maxsize=None)
def _stage_closure(stage: str, item: str | None, root: Path) -> frozenset[str]:
    starts = {f"pipeline/{stage}.py"}
    folder = STAGE_COMPONENTS.get(stage)
    if folder and item:
        starts.add(f"{folder}/{item}.py")
    every = STAGE_ALL_COMPONENTS.get(stage)
    if every:
        starts |= folder_modules(every, root)
    starts |= _with_parents(f"pipeline.{stage}", root)
    return frozenset(closure(starts, root, drawing=every is not None))


def stage_code(address: str, root: Path = REPO_ROOT) -> set[str]:
    """The project files the stage at ``address`` (``prepare``, ``features@hog``,
    ``train_classical@hog-logreg``) runs."""
    stage, _, item = address.partition("@")
    if stage not in STAGE_COMPONENTS:
        raise KeyError(f"unknown stage {stage!r}; known: {', '.join(STAGE_COMPONENTS)}")
    return set(_stage_closure(stage, item or None, root))


def resolved_stages(root: Path = REPO_ROOT) -> dict[str, list[str]]:
    """Every stage of ``root``'s dvc.yaml as DVC expands foreach/matrix with params.yaml: address -> deps."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {stage.name: [dep.def_path for dep in stage.deps] for stage in repo.index.stages}


def code_deps(deps: list[str], root: Path = REPO_ROOT) -> set[str]:
    """The deps of a stage that are project code (files or folders of the packages); a
    component folder of :data:`STAGE_ALL_COMPONENTS` stands for its modules (DVC hashes the
    folder's files; .dvcignore leaves out __pycache__)."""
    code = {d for d in deps if d.split("/")[0] in PACKAGES}
    for folder in set(STAGE_ALL_COMPONENTS.values()) & {d.rstrip("/") for d in code}:
        code = (code - {folder, folder + "/"}) | folder_modules(folder, root)
    return code


def stages_importing(path: str, addresses: list[str], root: Path = REPO_ROOT) -> set[str]:
    """The stages (of ``addresses``) whose code includes ``path``."""
    return {a for a in addresses if path in stage_code(a, root)}


# modules that import no other pipeline module and that every level uses: the error types, the output
# layout, and config.py's own two parts (its schema types and its error words)
SHARED_LEAVES = ("pipeline/errors.py", "pipeline/layout.py", "pipeline/config_schema.py", "pipeline/config_errors.py")


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

    import yaml

    if "--depth" in sys.argv[1:]:
        for label, skip in (("every module", ()), (f"without {', '.join(SHARED_LEAVES)}", SHARED_LEAVES)):
            chain = longest_chain(skip=skip)
            print(f"{len(chain)} ({label}): {' -> '.join(Path(f).stem for f in chain)}")
        return

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    example = {"features": params["features"]["names"][0], "train_cnn": params["cnn"]["architectures"][0]}
    for stage, folder in STAGE_COMPONENTS.items():
        item = example.get(stage)
        files = stage_code(f"{stage}@{item}" if item else stage)
        if item:  # dvc.yaml names the item's own module through the foreach variable
            files = (files - {f"{folder}/{item}.py"}) | {f"{folder}/${{item}}.py"}
        every = STAGE_ALL_COMPONENTS.get(stage)
        if every:  # dvc.yaml names the folder: every module in it, present and future
            files = (files - folder_modules(every)) | {every}
        print(f"{stage}:")
        for f in sorted(files):
            print(f"  - {f}")


if __name__ == "__main__":
    main()

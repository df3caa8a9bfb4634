"""Which project files each DVC stage runs: the import graph, read from the source with ``ast``
(nothing is imported).

Every ``import`` counts, at module level or inside a function (a stage that may call a function
may run its imports), except under ``if TYPE_CHECKING:``, which never runs. Importing ``a.b.c``
runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so those count too.

A DVC stage runs ``cvd <command>``; ``pipeline/cli.py`` only parses options and hands over to the
stage module of the same name (stage ``train_cnn`` -> ``pipeline/train_cnn.py``), so a stage's
code is that module plus everything it imports, transitively. The registries import the
component a stage item names by name (``importlib``), which ``ast`` cannot see:
``features@hog`` also runs ``features/extractors/hog.py``, ``train_cnn@lenet5``
``models/architectures/lenet5.py``.

``explain`` draws every registered extractor that provides a drawing (the hook
``features.Extractor.draw``), so it runs every module of ``features/extractors``;
``learning_curve`` retrains whichever architecture ``compare`` chose, so it may run any module
of ``models/architectures``. The imports inside an extractor module's ``draw`` function (its
drawing code) run only where drawings are made; they are not the ``features`` stage's, which
never draws.
"""
from __future__ import annotations

import ast
from pathlib import Path

from pipeline.errors import DataError

PACKAGES = ("pipeline", "features", "models", "comparison")
# stage -> the folder of the component its item names (features@hog -> features/extractors/hog.py), or None
STAGE_COMPONENTS = {
    "prepare": None,
    "features": "features/extractors",
    "train_classical": None,
    "train_cnn": "models/architectures",
    "compare": None,
    "learning_curve": None,
    "explain": None,
}
# stage -> the component folder every module of which it runs
STAGE_ALL_COMPONENTS = {"explain": "features/extractors", "learning_curve": "models/architectures"}
DRAWING_HOOK = "draw"  # an extractor module's drawing function; its imports are the drawing stages' only


def module_file(module: str, root: Path) -> str | None:
    """The project file that defines ``module`` (root-relative), or None if it is not ours."""
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
    """The package a relative import in ``path`` starts from."""
    return ".".join(Path(path).with_suffix("").parts[:-1])


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


def direct_imports(path: str, root: Path, drawing: bool = True) -> set[str]:
    """Project files that the source of ``path`` imports anywhere in it (``if TYPE_CHECKING:``
    blocks excepted; without ``drawing``, an extractor module's ``draw`` function too)."""
    try:
        tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=path)
    except SyntaxError as exc:
        raise DataError(f"{path}, line {exc.lineno}: {exc.msg}; its imports cannot be read") from None
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


def closure(starts: set[str], root: Path, drawing: bool = True, parsed: dict | None = None) -> set[str]:
    """``starts`` and every project file they import, transitively (without ``drawing``, not
    through the extractors' ``draw`` functions); ``parsed`` keeps each file's direct imports
    between calls on the same, unchanged source tree."""
    parsed = {} if parsed is None else parsed
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if (path, drawing) not in parsed:
            parsed[path, drawing] = direct_imports(path, root, drawing)
        todo.extend(parsed[path, drawing] - seen)
    return seen


def folder_modules(folder: str, root: Path) -> set[str]:
    """The Python modules directly in ``folder`` (root-relative), its ``__init__.py`` included."""
    return {p.relative_to(root).as_posix() for p in (root / folder).glob("*.py")}


def component_names(folder: str, root: Path) -> list[str]:
    """The components of a registry folder: its modules not starting with ``_`` (the registries' rule)."""
    return sorted(p.stem for p in (root / folder).glob("*.py") if not p.stem.startswith("_"))


def stage_code(address: str, root: Path, parsed: dict | None = None) -> set[str]:
    """The project files the stage at ``address`` (``prepare``, ``features@hog``,
    ``train_classical@hog-logreg``) runs; ``parsed`` as for :func:`closure`."""
    stage, _, item = address.partition("@")
    if stage not in STAGE_COMPONENTS:
        raise KeyError(f"unknown stage {stage!r}; known: {', '.join(STAGE_COMPONENTS)}")
    modules = [f"pipeline.{stage}"]
    folder = STAGE_COMPONENTS[stage]
    if folder and item:
        modules.append(f"{folder.replace('/', '.')}.{item}")
    every = STAGE_ALL_COMPONENTS.get(stage)
    if every:
        modules += [f"{every.replace('/', '.')}.{Path(f).stem}" for f in folder_modules(every, root)]
    starts = set().union(*(_with_parents(module, root) for module in modules))  # a package runs its __init__
    return closure(starts, root, drawing=every is not None, parsed=parsed)


def code_units(root: Path) -> list[str]:
    """Every stage whose code can differ: one per stage, and per component for a stage whose item
    names one (``features@hog`` for each module of ``features/extractors``)."""
    units = []
    for stage, folder in STAGE_COMPONENTS.items():
        units += [f"{stage}@{name}" for name in component_names(folder, root)] if folder else [stage]
    return units

"""dvc.yaml lists, for every stage, exactly the project code that stage runs; the library
layers do not reach up into pipeline/; every third-party import is declared."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

import pytest
from import_graph import PACKAGES, closure, code_deps, direct_imports, resolved_stages, stage_code

from helpers import REPO_ROOT


def project_files(*packages: str) -> list[str]:
    return sorted(p.relative_to(REPO_ROOT).as_posix() for pkg in packages for p in (REPO_ROOT / pkg).rglob("*.py"))


def test_each_stage_depends_on_exactly_the_code_it_imports():
    stages = resolved_stages(REPO_ROOT)
    assert {a.partition("@")[0] for a in stages} == {"prepare", "features", "train_classical", "train_cnn", "compare",
                                                     "learning_curve", "explain"}
    problems = []
    for address, deps in stages.items():
        code = code_deps(deps)
        folders = sorted(d for d in code if (REPO_ROOT / d).is_dir())
        if folders:
            problems.append(f"{address}: depends on folder(s) {folders}; list the files it imports instead")
            continue
        expected = stage_code(address)
        if code != expected:
            problems.append(f"{address}: dvc.yaml lacks {sorted(expected - code)}, has extra {sorted(code - expected)}")
    assert not problems, "\n".join(problems + ["(python tests/import_graph.py prints the right lists)"])


def test_editing_the_lecture_arithmetic_outdates_only_the_report():
    """features/conv.py holds the lecture's arithmetic for tests, `cvd describe` and the worked examples
    `explain` draws on the report: no stage that trains or evaluates a model runs it."""
    assert [a for a in resolved_stages(REPO_ROOT) if "features/conv.py" in stage_code(a)] == ["explain"]


@pytest.mark.parametrize("package", ["features", "models", "comparison"])
def test_library_layers_import_nothing_from_pipeline(package):
    offenders = {path: sorted(f for f in direct_imports(path) if f.startswith("pipeline/"))
                 for path in project_files(package)}
    assert not {p: f for p, f in offenders.items() if f}


def test_import_graph_follows_lazy_relative_and_submodule_imports(tmp_path):
    files = {
        "pipeline/__init__.py": "",
        "pipeline/stage.py": "from pipeline import helper\n\ndef run():\n    from features import thing\n",
        "pipeline/helper.py": "from typing import TYPE_CHECKING\nfrom .errors import E\n"
                              "if TYPE_CHECKING:\n    from pipeline import unused\n",
        "pipeline/errors.py": "",
        "pipeline/unused.py": "",
        "features/__init__.py": "",
        "features/thing.py": "import numpy\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = closure({"pipeline/stage.py"}, tmp_path)
    assert found == {"pipeline/stage.py", "pipeline/__init__.py", "pipeline/helper.py", "pipeline/errors.py",
                     "features/__init__.py", "features/thing.py"}


def _third_party_imports() -> dict[str, str]:
    """Top-level names of every non-project, non-stdlib module imported by the product, with one importer."""
    found: dict[str, str] = {}
    for path in project_files(*PACKAGES):
        for node in ast.walk(ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in PACKAGES and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, path)
    return found


def _normalise(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_third_party_import_is_declared():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_normalise(r) for r in project["dependencies"]}
    declared |= {_normalise(r) for extra in project.get("optional-dependencies", {}).values() for r in extra}
    distributions = packages_distributions()
    missing = []
    for module, importer in sorted(_third_party_imports().items()):
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not dists & declared:
            missing.append(f"{module} (imported by {importer}; distribution {', '.join(sorted(dists))})")
    assert not missing, "not declared in pyproject.toml: " + "; ".join(missing)


def test_the_import_graph_inside_pipeline_stays_shallow():
    """cli -> stage -> helper -> config at most, the shared leaves not counted (it was 8 deep before the
    comparison library moved out of pipeline/, 5 before the extractors' building left the features stage)."""
    from import_graph import SHARED_LEAVES, longest_chain

    chain = longest_chain(skip=SHARED_LEAVES)
    assert len(chain) <= 5, " -> ".join(chain)

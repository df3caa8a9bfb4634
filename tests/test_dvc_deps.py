"""dvc.yaml lists, for every stage, exactly the project code that stage runs; the library
layers do not reach up into pipeline/; every third-party import is declared."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

import subprocess

import pytest
from import_graph import PACKAGES, closure, code_units, direct_imports, resolved_stages, stages_importing

from features import extractor_names
from helpers import REPO_ROOT, venv_env
from models import architectures
from pipeline import code_digests, code_graph, layout


def project_files(*packages: str) -> list[str]:
    return sorted(p.relative_to(REPO_ROOT).as_posix() for pkg in packages for p in (REPO_ROOT / pkg).rglob("*.py"))


def test_each_stage_depends_on_its_code_through_its_own_digest_file():
    """Every stage but code_digests depends on project code only through code_digests/<its unit>.txt,
    and code_digests on every package, so that an edit anywhere reaches it."""
    stages = resolved_stages(REPO_ROOT)
    assert {a.partition("@")[0] for a in stages} == {"code_digests", "prepare", "features", "train_classical",
                                                     "train_cnn", "compare", "learning_curve", "explain"}
    assert sorted(stages.pop("code_digests")) == sorted(PACKAGES)
    problems = []
    for address, deps in stages.items():
        stage, _, item = address.partition("@")
        unit = address if code_graph.STAGE_COMPONENTS[stage] else stage
        code = [d for d in deps if d.split("/")[0] in PACKAGES + ("code_digests",)]
        if code != [str(layout.code_digest_path(unit))]:
            problems.append(f"{address}: code deps {code}, expected only {layout.code_digest_path(unit)}")
    assert not problems, "\n".join(problems)


def test_code_units_are_the_registered_components():
    units = code_units(REPO_ROOT)
    assert [u.partition("@")[2] for u in units if u.startswith("features@")] == list(extractor_names())
    assert [u.partition("@")[2] for u in units if u.startswith("train_cnn@")] == list(architectures.names())


def _write_tree(root, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


# a small project: two stages sharing a helper, one registry folder with a drawing extractor
TREE = {
    **{f"pipeline/{name}.py": "" for name in ("__init__", "errors")},
    "pipeline/prepare.py": "from pipeline import errors\n",
    "pipeline/features.py": "from pipeline import errors\nfrom features import base\n",
    "pipeline/train_classical.py": "", "pipeline/train_cnn.py": "", "pipeline/compare.py": "",
    "pipeline/learning_curve.py": "",
    "pipeline/explain.py": "def run():\n    from features import drawing\n",
    "features/__init__.py": "", "features/base.py": "", "features/drawing.py": "",
    "features/extractors/__init__.py": "",
    "features/extractors/edges.py": "from features import base\n\ndef draw():\n    from features import drawing\n",
    "features/extractors/_shared.py": "",
    "models/__init__.py": "", "models/architectures/__init__.py": "", "models/architectures/net.py": "",
}


def _digests(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in (root / "code_digests").rglob("*.txt")}


def test_an_edit_changes_the_digest_files_of_exactly_the_stages_that_run_it(tmp_path):
    _write_tree(tmp_path, TREE)
    code_digests.run(tmp_path)
    before = _digests(tmp_path)
    assert set(before) == {"code_digests/prepare.txt", "code_digests/features/edges.txt",
                           "code_digests/train_classical.txt", "code_digests/train_cnn/net.txt",
                           "code_digests/compare.txt", "code_digests/learning_curve.txt", "code_digests/explain.txt"}
    assert [line.split("  ")[1] for line in before["code_digests/features/edges.txt"].splitlines()] == [
        "features/__init__.py", "features/base.py", "features/extractors/__init__.py", "features/extractors/edges.py",
        "pipeline/__init__.py", "pipeline/errors.py", "pipeline/features.py"]  # not the drawing code
    for edited, changed in (("pipeline/errors.py", {"prepare", "features/edges"}),
                            ("features/drawing.py", {"explain"}),  # drawn by explain only
                            ("models/architectures/net.py", {"train_cnn/net", "learning_curve"})):
        (tmp_path / edited).write_text("# an edit\n")
        code_digests.run(tmp_path)
        after = _digests(tmp_path)
        assert {k for k in before if after[k] != before[k]} == {f"code_digests/{c}.txt" for c in changed}, edited
        before = after


def test_a_new_component_gets_its_file_and_a_removed_one_loses_it(tmp_path):
    _write_tree(tmp_path, TREE)
    code_digests.run(tmp_path)
    (tmp_path / "models/architectures/net.py").unlink()
    (tmp_path / "features/extractors/corners.py").write_text("")
    code_digests.run(tmp_path)
    files = _digests(tmp_path)
    assert "code_digests/features/corners.txt" in files and "code_digests/train_cnn/net.txt" not in files
    assert "features/extractors/corners.py" in files["code_digests/explain.txt"]  # explain draws every extractor


def test_a_digest_file_checks_with_sha256sum(tmp_path):
    """The files are in sha256sum's own format, so a user can check one against the code."""
    _write_tree(tmp_path, TREE)
    code_digests.run(tmp_path)
    ok = subprocess.run(["sha256sum", "--check", "--strict", "code_digests/explain.txt"], cwd=tmp_path,
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.count(": OK") == 8, ok.stdout + ok.stderr
    (tmp_path / "features/drawing.py").write_text("changed\n")
    assert subprocess.run(["sha256sum", "--check", "code_digests/explain.txt"], cwd=tmp_path,
                          capture_output=True).returncode == 1


def test_editing_the_lecture_arithmetic_outdates_only_the_report():
    """features/conv.py holds the lecture's arithmetic for tests, `cvd describe` and the worked examples
    `explain` draws on the report: no stage that trains or evaluates a model runs it."""
    assert stages_importing("features/conv.py", list(resolved_stages(REPO_ROOT))) == {"explain"}


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
    comparison library moved out of pipeline/, 5 before the extractors' building left the features stage and the MLflow store became a leaf)."""
    from import_graph import SHARED_LEAVES, longest_chain

    chain = longest_chain(skip=SHARED_LEAVES)
    assert len(chain) <= 4, " -> ".join(chain)


def test_a_module_that_does_not_parse_is_one_line_naming_it(tmp_path):
    _write_tree(tmp_path, TREE)
    code_digests.run(tmp_path)
    before = _digests(tmp_path)
    (tmp_path / "pipeline/errors.py").write_text("def broken(:\n")
    # the project's own `cvd` (its console script does not put the working directory on the path)
    result = subprocess.run(["cvd", "code-digests"], cwd=tmp_path, capture_output=True, text=True, env=venv_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: pipeline/errors.py, line 1: invalid syntax; its imports cannot be read"], result.stderr
    assert _digests(tmp_path) == before  # nothing written

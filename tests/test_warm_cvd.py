"""tests/warm_cvd.py, the warm ``cvd`` the stage-heavy tests run (helpers.warm_env): it must
behave as the real console script does, run the caller's code, and step aside where a fresh
process would load the libraries differently."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import warm_cvd
from helpers import session_dir, venv_env, warm_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Path:
    warm_cvd.start(session_dir())  # unless the session's collection already did
    if not warm_cvd.wait_ready(session_dir()):
        pytest.fail(f"the warm server did not start: {warm_cvd.home(session_dir()) / 'server.log'}")
    return warm_cvd.home(session_dir())


def cvd(env: dict, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["cvd", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_refused_command_exits_as_the_real_cvd_does(server, tmp_path):
    args = ("train-classical", "--feature", "nope", "--classifier", "logreg")
    warm, real = cvd(warm_env(), *args, cwd=tmp_path), cvd(venv_env(), *args, cwd=tmp_path)
    assert (warm.returncode, warm.stdout, warm.stderr) == (real.returncode, real.stdout, real.stderr)
    assert warm.returncode == 2 and "params.yaml: not found" in warm.stderr  # run outside a project
    assert "the real cvd" not in (server / "server.log").read_text()  # it ran in the server's fork


def test_the_fork_runs_the_project_code_of_the_callers_pythonpath(server, tmp_path):
    """A test's copy of the repository may have changed a module: the fork imports that copy."""
    package = tmp_path / "copy" / "pipeline"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text("import os, sys\n\ndef main():\n"
                                    "    print('the copy', sys.argv[1:], os.getcwd())\n    sys.exit(3)\n")
    out = cvd(warm_env({"PYTHONPATH": str(tmp_path / "copy")}), "a", "b", cwd=tmp_path)
    assert (out.returncode, out.stdout) == (3, f"the copy ['a', 'b'] {tmp_path}\n"), out.stderr


def test_an_environment_that_changes_how_libraries_load_gets_the_real_cvd(server, tmp_path):
    out = cvd(warm_env({"KERAS_BACKEND": "jax"}), "components", cwd=tmp_path)
    assert out.returncode == 0 and "resnet20" in out.stdout
    assert "the real cvd for ['components']: its environment differs in ['KERAS_BACKEND']" in (
        server / "server.log").read_text()

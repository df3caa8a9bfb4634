"""The `cvd` entry point: fast help, version, one-line errors with exit code 2."""
from __future__ import annotations

import subprocess
import sys

from features import extractor_names
from models import architectures, classifiers

from helpers import REPO_ROOT

CVD = [sys.executable, "-m", "pipeline.cli"]


def run_cvd(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*CVD, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


HEAVY = ("tensorflow", "keras", "mlflow", "sklearn", "cv2", "skimage", "scipy", "pandas", "matplotlib")
# `cvd --help` run by the entry point itself in a fresh interpreter, then the heavy libraries it loaded
HELP_PROBE = f"""
import sys
from pipeline.cli import main
sys.argv = ["cvd", "--help"]
try:
    main()
except SystemExit:
    pass
print("LOADED:" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_help_lists_every_stage_without_heavy_imports():
    out = run_cvd("--help")
    assert out.returncode == 0
    for command in ("prepare", "features", "train-classical", "train-cnn", "compare", "describe"):
        assert command in out.stdout
    # instant help: neither the import nor printing the help loads a heavy library
    probe = subprocess.run([sys.executable, "-c", HELP_PROBE], cwd=REPO_ROOT, capture_output=True, text=True,
                           check=True, timeout=120)
    assert "train-cnn" in probe.stdout  # the help was printed in the probe too
    assert probe.stdout.strip().splitlines()[-1] == "LOADED:"


def test_version():
    out = run_cvd("--version")
    assert out.returncode == 0 and out.stdout.startswith("cvd, version ")


def test_bad_params_one_line_exit_2(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO_ROOT / "params.yaml").read_text().replace("image_size: 32", "image_size: -5"))
    out = run_cvd("prepare", "--params", str(params), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {params}: data.image_size = -5: must be an integer >= 8"
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "data").exists()


def test_override_is_validated(tmp_path):
    out = run_cvd("prepare", "--params", str(REPO_ROOT / "params.yaml"), "--dataset", "folder",
                  "--path", str(tmp_path / "nope"), cwd=tmp_path)
    assert out.returncode == 2
    assert "nope" in out.stderr and "does not exist" in out.stderr
    assert not (tmp_path / "data").exists()


def test_describe_rejects_bad_input_shape():
    out = run_cvd("describe", "lenet5", "--input-shape", "32,32")
    assert out.returncode == 2 and "--input-shape" in out.stderr


def test_stage_help_lists_the_registries_and_the_registry_checks_the_name(tmp_path):
    for args, names in ((("features", "--help"), extractor_names()),
                        (("train-classical", "--help"), extractor_names() + classifiers.names()),
                        (("train-cnn", "--help"), architectures.names())):
        out = run_cvd(*args)
        assert out.returncode == 0
        assert all(name in out.stdout for name in names), (args, out.stdout)
    params = ("--params", str(REPO_ROOT / "params.yaml"))
    for args, expected in (
            (("train-cnn", "--arch", "vgg16", "--epochs", "1"),
             f"unknown architecture 'vgg16'; allowed: {', '.join(architectures.names())}"),
            (("features", "--name", "surf"),
             f"unknown feature extractor 'surf'; allowed: {', '.join(extractor_names())}"),
            (("train-classical", "--feature", "hog", "--classifier", "svm"),
             f"unknown classifier 'svm'; allowed: {', '.join(classifiers.names())}")):
        out = run_cvd(*args, *params, cwd=tmp_path)
        assert (out.returncode, out.stderr) == (2, f"error: {expected}\n"), args


def test_describe_passes_options_as_architecture_parameters():
    out = run_cvd("describe", "lenet5", "--variant", "lecture")
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1
    assert "variant" in out.stderr and "Traceback" not in out.stderr


def test_stage_checks_only_its_own_component(tmp_path):
    params = tmp_path / "params.yaml"
    text = (REPO_ROOT / "params.yaml").read_text().replace("orientations: 9", "orientations: 0")
    params.write_text(text)
    # train-classical reads the hog features, it does not run the extractor: it fails only for want of them
    args = ("train-classical", "--params", str(params), "--feature", "hog", "--classifier", "logreg")
    out = run_cvd(*args, cwd=tmp_path)
    assert out.returncode == 2 and "features.hog" not in out.stderr and "not found" in out.stderr
    params.write_text(text.replace("  logreg:\n    C: 1.0", "  logreg:\n    C: -1.0"))
    out = run_cvd(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {params}: classical.logreg: ") and "'C'" in out.stderr


def test_train_cnn_epochs_option_wins_over_the_architectures_own(monkeypatch):
    from click.testing import CliRunner

    from pipeline import train_cnn
    from pipeline.cli import cli

    seen = {}
    monkeypatch.setattr(train_cnn, "run", lambda cfg, arch: seen.update(training=cfg.cnn.training(arch)))
    params = str(REPO_ROOT / "params.yaml")
    result = CliRunner().invoke(cli, ["train-cnn", "--params", params, "--arch", "alexnet", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert tuple(seen["training"]) == (2, 64, 0.0003)  # params.yaml's cnn.alexnet.train.epochs is 4

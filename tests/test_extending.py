"""README "Extending", followed literally in a copy of the small run (conftest's ``small_run``,
already reproduced): a new extractor, with a drawing, and a new CNN architecture are each ONE
new module plus a params.yaml section; nothing else is edited. Real `dvc repro` runs only
their stages (and the comparison after them) through to the leaderboard, and the extractor's
picture appears in `cvd visualize` and in the report."""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from import_graph import resolved_stages, stage_code

from helpers import SMALL_RUN_ARCHS, SMALL_RUN_CLASSIFIERS, SMALL_RUN_CURVE_FRACTIONS, SMALL_RUN_FEATURES, warm_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.heavy]

EXTRACTOR_MODULE = '''
"""Mean of each cell x cell block of pixels: a toy extractor."""
import numpy as np

from features import Extractor
from features._batch import ImageFeatureExtractor, check_int


class CellMeans(ImageFeatureExtractor):
    def __init__(self, cell=4, n_jobs=1, chunk_size=2048):
        self.cell = cell
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _check_params(self):
        super()._check_params()
        check_int(type(self).__name__, "cell", self.cell, 1)

    def _min_image_size(self):
        return (self.cell, self.cell), f"cell={self.cell}"

    def _transform_chunk(self, images):
        n, h, w = images.shape
        c = self.cell
        blocks = images[:, : h // c * c, : w // c * c].reshape(n, h // c, c, w // c, c)
        return blocks.mean(axis=(2, 4), dtype=np.float32).reshape(n, -1) / np.float32(255)


def draw(extractor, image, features=None):
    """cell_means.png: the image's cell means (its stored features, else computed here) as a picture."""
    from matplotlib.figure import Figure
    from sklearn.base import clone

    from features.drawing import show_image  # imported here: the features stage never draws

    image = np.asarray(image)
    if features is None:
        features = clone(extractor).fit_transform(image[None])[0]
    fig = Figure(figsize=(3, 3.2), dpi=100)
    means = np.reshape(features, (image.shape[0] // extractor.cell, -1))
    show_image(fig.subplots(), means, f"cell means, {extractor.cell}x{extractor.cell} px cells", cmap="gray",
               vmin=0, vmax=1)
    return {"cell_means": fig}


EXTRACTOR = Extractor(transformer=CellMeans, citation="a toy", summary="mean of each cell x cell block", draw=draw)
'''

ARCHITECTURE_MODULE = '''
"""One 3x3 convolution, one pooling, softmax: a toy CNN."""
from models.cnn import FC, Architecture, Conv, Flatten, Input, Pool, Resize, check_input_shape, check_num_classes


def spec(input_shape=(32, 32, 1), num_classes=10, filters=4):
    shape = check_input_shape(input_shape)
    check_num_classes(num_classes)
    adapt = () if shape[:2] == (32, 32) else (Resize("resize", 32, 32),)
    return (Input("input", shape), *adapt, Conv("conv1", filters, 3), Pool("pool1", 2, 2),
            Flatten("flatten"), FC("fc1", num_classes, "softmax"))


ARCHITECTURE = Architecture(spec=spec, citation="a toy", summary="conv 3x3, pool 2, softmax")
'''


def run(repo: Path, *cmd: str) -> str:
    """``cmd`` in the copy, importing the copy's packages (not the installed checkout's)."""
    env = warm_env({"PYTHONPATH": str(repo)})
    out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def extended(small_run, tmp_path_factory) -> Path:
    """A copy of the small run (its outputs and DVC cache; not its MLflow store, whose runs
    keep their artifacts in the original), its state committed, extended as README says."""
    repo = tmp_path_factory.mktemp("extend") / "repo"
    shutil.copytree(small_run, repo, symlinks=True,
                    ignore=shutil.ignore_patterns("mlflow.db*", "mlartifacts", "mlruns", "tmp"))
    run(repo, "git", "add", "-A")
    run(repo, "git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-qm", "small run")
    # README "Extending": step 1, the extractor module; step 2, the architecture module ...
    (repo / "features/extractors/cell_means.py").write_text(EXTRACTOR_MODULE.lstrip())
    (repo / "models/architectures/tiny_cnn.py").write_text(ARCHITECTURE_MODULE.lstrip())
    # ... step 3, their params.yaml sections and names, beside the small run's extractors and CNN
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["features"]["names"] += ["cell_means"]
    params["features"]["cell_means"] = {"cell": 4}
    params["cnn"]["architectures"] += ["tiny_cnn"]
    params["cnn"]["tiny_cnn"] = {"filters": 8, "train": {"epochs": 5, "batch_size": None, "learning_rate": None}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo


@pytest.fixture(scope="module")
def reproduced(extended) -> str:
    """``dvc repro`` of the extended copy; its output."""
    return run(extended, "dvc", "repro")


def test_the_new_components_are_two_new_files_and_params(extended):
    changed = run(extended, "git", "status", "--porcelain").splitlines()
    assert sorted(changed) == [" M params.yaml", "?? features/extractors/cell_means.py",
                               "?? models/architectures/tiny_cnn.py"]


def test_the_cli_and_describe_know_them(extended):
    assert "cell_means" in run(extended, "cvd", "features", "--help")
    assert "tiny_cnn" in run(extended, "cvd", "train-cnn", "--help")
    listed = run(extended, "cvd", "components")
    assert "mean of each cell x cell block" in listed and "conv 3x3, pool 2, softmax" in listed
    table = run(extended, "cvd", "describe", "tiny_cnn")
    # conv1: 3*3*1*4 + 4 = 40; fc1: 15*15*4*10 + 10 = 9,010 (defaults: 32x32x1, 10 classes, 4 filters)
    assert "9,050 parameters" in table and "a toy" in table


def test_their_stages_depend_on_their_own_code_digests(extended):
    stages = resolved_stages(extended)
    assert "code_digests/features/cell_means.txt" in stages["features@cell_means"]
    assert "code_digests/train_cnn/tiny_cnn.txt" in stages["train_cnn@tiny_cnn"]
    assert "features/extractors/cell_means.py" in stage_code("explain", extended)  # explain draws it


def test_dvc_repro_runs_only_their_stages_to_the_leaderboard(extended, reproduced):
    ran = set(re.findall(r"Running stage '([^']+)'", reproduced))
    assert ran == {"code_digests", "features@cell_means", "train_cnn@tiny_cnn", "compare", "explain",
                   *(f"train_classical@cell_means-{c}" for c in SMALL_RUN_CLASSIFIERS),
                   *(f"learning_curve@{f}" for f in SMALL_RUN_CURVE_FRACTIONS)}  # compare's new summary
    with open(extended / "reports/leaderboard.csv", newline="") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {*(f"{f}-{c}" for f in [*SMALL_RUN_FEATURES, "cell_means"] for c in SMALL_RUN_CLASSIFIERS),
                         *SMALL_RUN_ARCHS, "tiny_cnn"}
    # 8x8 block means of digits (64 values) separate the 10 classes well; chance is 0.1
    assert float(rows["cell_means-logreg"]["test_accuracy"]) >= 0.8
    assert float(rows["tiny_cnn"]["test_accuracy"]) >= 0.5
    assert int(rows["tiny_cnn"]["param_count"]) == 8 * 9 + 8 + 15 * 15 * 8 * 10 + 10
    dimension = json.loads((extended / "metrics/features/cell_means.json").read_text())["dimension"]
    assert dimension == (32 // 4) ** 2
    assert textwrap.dedent(run(extended, "dvc", "status")).strip().endswith("up to date.")


def png_shape(path: Path) -> tuple[int, ...]:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape


def test_cvd_visualize_draws_the_new_extractor(extended):
    out = extended.parent / "pics"
    run(extended, "cvd", "visualize", "--from-split", "test", "--n", "2", "--out", str(out))
    folders = sorted(out.glob("test-*"))
    assert len(folders) == 2
    for folder in folders:  # beside the extractors that were there: their drawings are unchanged
        assert {"image.png", "cell_means.png", "hog.png", "sobel.png", "sift.png"} <= {p.name for p in folder.iterdir()}
        assert min(png_shape(folder / "cell_means.png")[:2]) > 150  # a 3-inch figure at 100 dpi


def test_the_report_shows_the_new_extractors_drawing(extended, reproduced):
    drawn = sorted((extended / "reports/explain/visualize").glob("test-*/cell_means.png"))
    assert drawn, "explain drew no cell_means.png"
    page = (extended / "reports/index.html").read_text(encoding="utf-8")
    assert all(f"explain/visualize/{p.parent.name}/cell_means.png" in page for p in drawn)

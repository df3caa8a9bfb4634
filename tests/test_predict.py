"""`cvd predict`: new image files classified exactly as the pipeline's own stages classify the
same images, and every user mistake one line with exit code 2 and no CSV written.

The fast tests run in a temporary folder holding only a manifest (no model is needed to reach
the image checks); the slow ones use the session's real small ``dvc repro`` (conftest
``small_run``).
"""
from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from helpers import REPO_ROOT, venv_env
from pipeline import predict
from pipeline.cli import cli
from pipeline.config import parse_config
from pipeline.io import write_json

CLASSES = ["cat", "dog"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a prepared split's manifest (16x16 RGB, two classes) and no model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((REPO_ROOT / "params.yaml").read_text())
    write_json(tmp_path / "data/prepared/manifest.json", {"image_shape": [16, 16, 3], "class_names": CLASSES})
    return tmp_path


def images(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    return folder


def cvd(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_model_lists_the_configured_ids(workdir):
    one_line_error(cvd("predict", "hog-lgoreg", str(images(workdir / "in"))), "MODEL 'hog-lgoreg': unknown",
                   "hog-logreg", "lenet5", "`best`", "models:/")
    assert not (workdir / "predictions.csv").exists()


def test_untrained_model_names_its_file_and_the_command(workdir):
    one_line_error(cvd("predict", "hog-logreg", str(images(workdir / "in"))),
                   "artifacts/classical/hog-logreg.skops not found", "cvd train-classical --feature hog --classifier logreg")
    one_line_error(cvd("predict", "lenet5", str(images(workdir / "in"))), "artifacts/cnn/lenet5.keras not found",
                   "cvd train-cnn --arch lenet5")
    one_line_error(cvd("predict", "best", str(images(workdir / "in"))), "reports/summary.json: not found")


def test_no_prepared_split_says_run_dvc_repro(workdir):
    (workdir / "data/prepared/manifest.json").unlink()
    one_line_error(cvd("predict", "lenet5", str(images(workdir / "in"))), "manifest.json: not found", "dvc repro")


@pytest.fixture
def trained(workdir: Path) -> Path:
    """A stand-in model file so that the image checks are reached (they come before loading it)."""
    (workdir / "artifacts/cnn").mkdir(parents=True)
    (workdir / "artifacts/cnn/lenet5.keras").write_bytes(b"not loaded before the images are read")
    return workdir


def test_unreadable_image_is_named_and_no_csv_is_written(trained):
    folder = images(trained / "in")
    (folder / "2.png").write_bytes(b"\x89PNG truncated")
    (trained / "old.csv").write_text("kept\n")
    one_line_error(cvd("predict", "lenet5", str(folder), "--out", "old.csv"), "2.png: corrupt or unreadable image")
    assert (trained / "old.csv").read_text() == "kept\n"
    assert [p.name for p in trained.iterdir() if p.suffix == ".csv"] == ["old.csv"]  # no temporary left


def test_image_whose_channels_cannot_be_converted(trained):
    folder = images(trained / "in", 1)
    assert cv2.imwrite(str(folder / "depth.tiff"), np.random.default_rng(0).random((8, 8), dtype=np.float32))
    one_line_error(cvd("predict", "lenet5", str(folder)), "depth.tiff: 1-channel float32 image cannot be converted",
                   "3-channel 8-bit")
    assert not (trained / "predictions.csv").exists()


def test_missing_path_and_empty_folder(trained):
    one_line_error(cvd("predict", "lenet5", "nowhere.png"), "nowhere.png: no such image file or folder")
    (trained / "empty").mkdir()
    (trained / "empty/notes.txt").write_text("x")
    one_line_error(cvd("predict", "lenet5", "empty"), "empty: folder holds no images")


def test_folders_are_searched_recursively_in_order_hidden_skipped(tmp_path):
    images(tmp_path / "a/sub", 2)
    images(tmp_path / "a/.thumbs", 1)
    (tmp_path / "a/readme.md").write_text("x")
    single = images(tmp_path / "b", 1) / "0.png"
    files = predict.image_files([tmp_path / "a", single])
    assert files == [tmp_path / "a/sub/0.png", tmp_path / "a/sub/1.png", single]


def test_images_are_read_as_prepare_reads_them(tmp_path, monkeypatch, capsys):
    from pipeline.datasets import load_folder_source

    folder = images(tmp_path / "cats", 3)
    images(tmp_path / "dogs", 1)
    pools = load_folder_source(tmp_path, 16, 1)
    monkeypatch.setattr(predict, "PROGRESS_FROM", 3)
    batch = predict.read_images(sorted(folder.iterdir()), 16, 1)
    np.testing.assert_array_equal(batch, pools.x_train[:3])
    assert "reading images" in capsys.readouterr().err  # the bar, on stderr, from PROGRESS_FROM images


def test_rows_name_the_class_its_score_and_the_top_three():
    scores = np.array([[0.1, 0.7, 0.2, 0.0], [0.0, 0.0, 0.1, 0.9]])
    model = predict.Model("toy", lambda x: (np.array([1, 3]), scores, "probability"))
    rows = predict.predict(model, np.zeros((2, 4, 4, 1), np.uint8), ["a", "b", "c", "d"], [Path("x"), Path("y")])
    assert rows[0] == {"path": "x", "class": "b", "probability": "0.7", "score": "0.7", "score_kind": "probability",
                       "top3": "b=0.7; c=0.2; a=0.1"}
    assert rows[1]["class"] == "d" and rows[1]["top3"].startswith("d=0.9; c=0.1")
    margins = predict.Model("svm", lambda x: (np.array([0]), np.array([[1.5, -0.5, -1.0, -2.0]]), "decision_function"))
    row = predict.predict(margins, np.zeros((1, 4, 4, 1), np.uint8), ["a", "b", "c", "d"], [Path("z")])[0]
    assert (row["probability"], row["score"], row["score_kind"]) == ("", "1.5", "decision_function")
    with pytest.raises(predict.DataError, match="gives 4 class scores, but the prepared split has 3"):
        predict.predict(model, np.zeros((2, 4, 4, 1), np.uint8), ["a", "b", "c"], [Path("x"), Path("y")])


# --- against the real pipeline's own predictions (slow: a small `dvc repro`) ---


def write_test_images(repo: Path, dest: Path) -> list[Path]:
    """The prepared split's test images as PNG files (lossless, already at the split's size)."""
    from pipeline.io import load_split

    split = load_split(repo / "data/prepared/split.npz")
    dest.mkdir()
    paths = []
    for i, image in enumerate(split.x["test"]):
        paths.append(dest / f"{i:04d}.png")
        cv2.imwrite(str(paths[-1]), image if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return paths


def stage_predictions(repo: Path, model_id: str) -> list[str]:
    """The class names the stage itself predicted for the test images, in split order."""
    import json

    names = json.loads((repo / "data/prepared/manifest.json").read_text())["class_names"]
    with open(repo / "predictions" / model_id / "test.csv", newline="") as fh:
        return [names[int(row["y_pred"])] for row in csv.DictReader(fh)]


def run_cvd(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["cvd", *args], cwd=repo, env=venv_env({"PYTHONPATH": str(repo)}), capture_output=True,
                          text=True, timeout=300)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["hog-logreg", "lenet5", "best"])
def test_predictions_equal_the_stages_own(small_run, tmp_path, model):
    import json

    paths = write_test_images(small_run, tmp_path / "test")
    out = tmp_path / "out.csv"
    result = run_cvd(small_run, "predict", model, str(tmp_path / "test"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    model_id = model
    if model == "best":
        summary = json.loads((small_run / "reports/summary.json").read_text())
        model_id = min((summary["best_classical"], summary["best_deep"]),
                       key=lambda r: (-r["val_accuracy"], r["param_count"], r["model"]))["model"]
    rows = read_rows(out)
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    assert [r["class"] for r in rows] == stage_predictions(small_run, model_id)
    assert f"wrote {len(paths)} predictions to {out}" in result.stdout
    assert "reading images" not in result.stderr  # 60 images: below the progress bar's threshold


@pytest.mark.slow
def test_mlflow_model_uri(small_run, tmp_path):
    """A registered version of lenet5's logged model predicts what the stage predicted."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{small_run / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("classic-vs-deep").experiment_id],
                             "tags.model = 'lenet5'", order_by=["attributes.start_time DESC"], max_results=1)[0]
    mlflow.set_tracking_uri(f"sqlite:///{small_run / 'mlflow.db'}")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "predict-test")
    paths = write_test_images(small_run, tmp_path / "test")
    out = tmp_path / "out.csv"
    result = run_cvd(small_run, "predict", f"models:/predict-test/{version.version}", *map(str, paths[:10]),
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert [r["class"] for r in read_rows(out)] == stage_predictions(small_run, "lenet5")[:10]
    assert "Downloading artifacts" not in result.stderr and "INFO" not in result.stderr
    missing = run_cvd(small_run, "predict", "models:/predict-test/99", str(paths[0]), "--out", str(tmp_path / "x.csv"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: MODEL models:/predict-test/99: cannot be loaded")
    assert len(missing.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.csv").exists()


def test_images_are_deskewed_when_the_split_was(trained, monkeypatch):
    from pipeline.preprocessing import deskew_batch

    write_json(trained / "data/prepared/manifest.json",
               {"image_shape": [16, 16, 1], "class_names": CLASSES, "deskew": True})
    folder = images(trained / "in", 3)
    seen = []

    def scores(batch):
        seen.append(batch)
        return np.zeros(len(batch), np.int64), np.full((len(batch), 2), 0.5), "probability"

    monkeypatch.setattr(predict, "load_model", lambda label, source, n: predict.Model(label, scores))
    cfg = parse_config(yaml.safe_load((trained / "params.yaml").read_text()))
    predict.run(cfg, "lenet5", [folder], out=trained / "out.csv")
    raw = predict.read_images(sorted(folder.iterdir()), 16, 1)
    assert not np.array_equal(deskew_batch(raw), raw)  # the test images do slant
    np.testing.assert_array_equal(seen[0], deskew_batch(raw))

"""`cvd visualize` on image files and on the prepared split: the PNGs it writes, gray and
RGB, the bag of words from the stored sift matrix, CNN pictures, and one-line errors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from helpers import REPO_ROOT, make_split
from pipeline.cli import cli
from pipeline.io import save_split

PER_IMAGE = {"image.png", "sobel.png", "hog.png", "sift.png", "kmeans.png", "colorhist.png"}
FITTED_KMEANS = {"kmeans_filters.png", "kmeans_maps.png"}  # once kmeans is fitted: configured, or saved by its stage
LECTURE = {"convolution.png", "padding.png", "stride.png", "max_pool.png"}


def write_params(root: Path, names: list[str] | None = None, **data) -> Path:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"].update(data)
    params["features"]["names"] = names or params["features"]["names"]
    params["features"]["n_jobs"] = 1
    params["features"]["sift"]["n_words"] = 8  # the generated split's few descriptors
    params["features"]["kmeans"].update(n_centroids=8, n_patches=2000)  # fitted on the split here: keep it cheap
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_cvd(*args: str):
    return CliRunner().invoke(cli, ["visualize", *args], catch_exceptions=False)


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


@pytest.mark.parametrize("channels", [1, 3])
def test_image_files_gray_and_rgb(mlflow_tmp, channels):
    write_params(mlflow_tmp, image_size=32, channels=channels)
    rng = np.random.default_rng(0)
    cv2.imwrite("digit one.png", rng.integers(0, 256, (20, 24), dtype=np.uint8))
    cv2.imwrite("colour.jpg", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    result = run_cvd("digit one.png", "colour.jpg", "--out", "pics")
    assert result.exit_code == 0, result.output
    for name in ("digit_one", "colour"):
        assert files_in(mlflow_tmp / "pics" / name) == PER_IMAGE  # no split: no bag of words; no CNN trained
        shown = cv2.imread(str(mlflow_tmp / "pics" / name / "image.png"), cv2.IMREAD_UNCHANGED)
        assert shown.shape[:2] == (32 * 8, 32 * 8)  # data.image_size, enlarged 8 times
    assert files_in(mlflow_tmp / "pics/lecture") == LECTURE
    assert "not trained yet" in result.output  # the note that CNN pictures are skipped


@pytest.mark.parametrize("configured", [False, True], ids=["kmeans-unused", "kmeans-configured"])
def test_from_split_uses_the_stored_bag_of_words_and_a_trained_cnn(mlflow_tmp, configured):
    """Extractors the run uses are fitted on the split when no stage saved them; an unused one
    (k-means here) is drawn unfitted rather than paying for its codebook."""
    from models import architectures

    write_params(mlflow_tmp, names=["raw", "sobel", "hog", "sift"] + ["kmeans"] * configured)
    split = make_split()
    save_split("data/prepared/split.npz", split)
    # a stored sift matrix for this split (as features@sift writes it): used instead of fitting a codebook
    stored = np.zeros((len(split.x["test"]), 5 * 8), np.float32)
    stored[:, 3] = 1.0
    Path("data/features").mkdir(parents=True)
    np.savez("data/features/sift.npz", split_sha256=np.array(split.sha256), x_test=stored)
    Path("artifacts/cnn").mkdir(parents=True)
    architectures.get("lenet5").build((32, 32, 1), 3).save("artifacts/cnn/lenet5.keras")

    result = run_cvd("--from-split", "test", "--n", "2", "--out", "pics", "--arch", "lenet5")
    assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in (mlflow_tmp / "pics").iterdir() if p.name.startswith("test-"))
    assert len(folders) == 2
    for name in folders:
        fitted = FITTED_KMEANS if configured else set()
        assert files_in(mlflow_tmp / "pics" / name) == PER_IMAGE | fitted | {"bovw.png", "lenet5_maps.png"}
    assert files_in(mlflow_tmp / "pics/cnn") == {"lenet5_conv1.png", "lenet5_conv2.png"}



def test_from_split_picks_the_same_images_for_the_same_seed():
    from pipeline.visualize import pick_from_split

    split = make_split()
    names = [p.name for p in pick_from_split(split, "test", 4, seed=7)]
    assert names == [p.name for p in pick_from_split(split, "test", 4, seed=7)] and len(set(names)) == 4
    assert names != [p.name for p in pick_from_split(split, "test", 4, seed=8)]
    assert len(pick_from_split(split, "val", 100, seed=7)) == len(split.x["val"])  # at most the whole part


def test_bag_of_words_from_a_fitted_codebook_without_stored_features(mlflow_tmp):
    write_params(mlflow_tmp)
    save_split("data/prepared/split.npz", make_split())
    cv2.imwrite("x.png", make_split().x["test"][0][..., 0])
    result = run_cvd("x.png", "--out", "pics")
    assert result.exit_code == 0, result.output
    assert "bovw.png" in files_in(mlflow_tmp / "pics/x")


def test_bag_of_words_from_the_extractor_features_saved(mlflow_tmp):
    from features.extractors.sift import SIFTFeatures
    from pipeline.features import save_extractor

    write_params(mlflow_tmp)
    save_extractor(SIFTFeatures(step=4, size=5, n_words=8).fit(make_split().x["train"]), "sift")
    cv2.imwrite("x.png", make_split().x["test"][0][..., 0])
    result = run_cvd("x.png", "--out", "pics")  # no split here: only the saved extractor has a codebook
    assert result.exit_code == 0, result.output
    assert "bovw.png" in files_in(mlflow_tmp / "pics/x")


@pytest.mark.parametrize(("args", "message"), [
    (["missing.png"], "error: missing.png: no such image file"),
    (["broken.png"], "error: broken.png: corrupt or unreadable image"),
    ([], "error: give image files or --from-split PART, not both and not neither"),
    (["--from-split", "test"], "error: data/prepared/split.npz: not found; run `cvd prepare`"),
    (["ok.png", "--arch", "alexnet"], "error: artifacts/cnn/alexnet.keras: alexnet is not trained yet; run "
                                      "`dvc repro train_cnn@alexnet` (or `cvd train-cnn --arch alexnet`)"),
])
def test_user_mistakes_are_one_line_and_write_nothing(mlflow_tmp, args, message):
    write_params(mlflow_tmp, image_size=32)
    Path("broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"GARBAGE" * 4)
    cv2.imwrite("ok.png", np.zeros((32, 32), np.uint8))
    result = CliRunner().invoke(cli, ["visualize", *args, "--out", "pics"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(message.split(";")[0])
    assert not (mlflow_tmp / "pics").exists()


def test_image_files_are_deskewed_as_prepare_deskews_the_split(tmp_path):
    from pipeline.preprocessing import resize_batch
    from pipeline.preprocessing import deskew_batch
    from pipeline.visualize import read_image_files

    rows, cols = np.mgrid[:40, :40]
    slanted = np.where(np.abs(cols - 20 - 0.4 * (rows - 20)) <= 2, 255, 0).astype(np.uint8)
    path = tmp_path / "seven.png"
    cv2.imwrite(str(path), slanted)
    resized = resize_batch(slanted[None], 32, 1)
    plain, = read_image_files([path], 32, 1)
    upright, = read_image_files([path], 32, 1, deskew=True)
    np.testing.assert_array_equal(plain.image, resized[0])
    np.testing.assert_array_equal(upright.image, deskew_batch(resized)[0])
    assert not np.array_equal(upright.image, plain.image)

"""Image files are untrusted input: one reader (pipeline.datasets.decode_image_file) for `cvd prepare`'s
folder dataset, `cvd predict` and `cvd visualize`.

What each bad or unusual file yields: an image above data.max_pixels (a real decompression bomb:
a 1.6 MB PNG of 40,000 x 40,000 pixels) is one line naming the file, its size and the limit; an
empty file, a link loop and a dangling link are one line each; 16-bit, 1-bit, palette, CMYK and
animated images decode to the 8-bit pixels asserted below; EXIF orientation is applied; class
folders may have spaces and non-ASCII names; duplicates across classes and across the split's
parts are recorded in the manifest with one warning line; a class too small for the stratified
split is named with its folder and count.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from helpers import REPO_ROOT, make_folder
from pipeline import prepare
from pipeline.cli import cli
from pipeline.config import parse_config
from pipeline.datasets import Pools, load_folder_source, read_image_file
from pipeline.image_files import DEFAULT_MAX_PIXELS, decode_image_file
from pipeline.splitting import check_class_sizes, min_images_per_class
from pipeline.errors import DataError
from pipeline.io import load_split

BOMB_SIDE = 40_000


# ----------------------------------------------------------------------------- helpers
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _raw_deflate_zeros(n: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(bytes(n)) + compressor.flush(zlib.Z_FULL_FLUSH)


def write_black_png(path: Path, width: int, height: int) -> Path:
    """A valid 8-bit grayscale PNG of black pixels, written without holding them: one deflated block
    of rows, byte-aligned by a full flush, repeated; then an empty final block and the Adler-32 of
    all-zero data (a = 1, b = length mod 65521). 40,000 x 40,000 pixels make ~1.6 MB in well under
    a second."""
    row = width + 1  # the filter byte (0: none), then the pixels
    block_rows = max(1, min(height, (1 << 24) // row))
    full, rest = divmod(height, block_rows)
    stream = (b"\x78\xda" + _raw_deflate_zeros(row * block_rows) * full
              + (_raw_deflate_zeros(row * rest) if rest else b"")
              + b"\x03\x00" + struct.pack(">I", ((row * height) % 65521) << 16 | 1))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + _chunk(b"IDAT", stream) + _chunk(b"IEND", b""))
    return path


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def config(**data_overrides):
    raw = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    raw["data"].update(data_overrides)
    return parse_config(raw)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return write_black_png(tmp_path_factory.mktemp("bomb") / "bomb.png", BOMB_SIDE, BOMB_SIDE)


@pytest.fixture
def workdir(mlflow_tmp):
    return mlflow_tmp


BOMB_LINE = rf"bomb.png: 40,000 x 40,000 pixels is above the limit of 100,000,000 \(data.max_pixels\)"


# ------------------------------------------------------------------------ pixel limit
def test_the_png_writer_makes_real_images(tmp_path):
    for width, height in ((5, 3), (300, 200), (1, 1)):
        image = cv2.imread(str(write_black_png(tmp_path / "b.png", width, height)), cv2.IMREAD_UNCHANGED)
        assert image.shape == (height, width) and not image.any()


def test_bomb_is_one_line_from_the_header(bomb):
    assert bomb.stat().st_size < 2_000_000
    for channels in (1, 3):
        with pytest.raises(DataError, match=BOMB_LINE) as info:
            read_image_file(bomb, 32, channels)
        assert "\n" not in str(info.value)


def test_bomb_in_predict_and_visualize_readers(bomb):
    from pipeline.predict import read_images

    with pytest.raises(DataError, match=BOMB_LINE):
        read_images([bomb], 32, 1)
    with pytest.raises(DataError, match=BOMB_LINE):  # what cvd visualize decodes with (see the next test)
        decode_image_file(bomb, 3)


def test_bomb_in_visualize(bomb):
    from pipeline.visualize import read_image_files

    with pytest.raises(DataError, match=BOMB_LINE):
        read_image_files([bomb], 32, 1)


def test_bomb_in_a_class_folder_is_one_cli_line_and_writes_nothing(workdir, bomb):
    root = make_folder(workdir / "imgs", per_class=4)
    shutil.copy(bomb, root / "dog" / "bomb.png")
    result = CliRunner().invoke(cli, ["prepare", "--params", str(REPO_ROOT / "params.yaml"),
                                      "--dataset", "folder", "--path", str(root)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: {root / 'dog' / 'bomb.png'}: 40,000 x 40,000 pixels is above the limit of 100,000,000 "
        f"(data.max_pixels): a decompression bomb or an image too large to prepare"]
    assert not (workdir / "data").exists()


def test_a_limit_above_opencvs_own_is_still_one_line(workdir, bomb):
    """data.max_pixels raised past OpenCV's CV_IO_MAX_IMAGE_PIXELS (2^30): OpenCV refuses, in one line."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"]["max_pixels"] = 2_000_000_000
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    root = make_folder(workdir / "imgs", per_class=4)
    shutil.copy(bomb, root / "dog" / "bomb.png")
    result = CliRunner().invoke(cli, ["prepare", "--dataset", "folder", "--path", str(root)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {root / 'dog' / 'bomb.png'}: cannot be decoded"), lines
    assert "CV_IO_MAX_IMAGE_PIXELS" in lines[0] and "Traceback" not in result.output


def test_the_limit_is_inclusive_and_configurable(tmp_path):
    path = write_black_png(tmp_path / "b.png", 20, 10)
    assert read_image_file(path, None, 1, max_pixels=200).shape == (10, 20, 1)
    with pytest.raises(DataError, match=r"b.png: 20 x 10 pixels is above the limit of 199 \(data.max_pixels\)"):
        read_image_file(path, None, 1, max_pixels=199)
    assert config().data.max_pixels == DEFAULT_MAX_PIXELS == 100_000_000  # params.yaml's value is the default


def test_pillows_own_bomb_check_stays_quiet(tmp_path):
    """Between Pillow's warning threshold (89.5 MP) and ours (100 MP) the image is read, without
    DecompressionBombWarning; above ours, our line and not Pillow's DecompressionBombError."""
    fine = write_black_png(tmp_path / "fine.png", 9_500, 9_500)  # 90.25 MP
    too_big = write_black_png(tmp_path / "big.png", 20_000, 10_000)  # 200 MP: above Pillow's error threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not read_image_file(fine, 8, 1).any()
        with pytest.raises(DataError, match=r"big.png: 20,000 x 10,000 pixels is above the limit"):
            read_image_file(too_big, 8, 1)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's default, back after the header was read


# ------------------------------------------------------------- empty files and links
def test_empty_file_and_broken_links_are_named(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=4)
    empty = root / "cat" / "empty.png"
    empty.touch()
    with pytest.raises(DataError, match=rf"^{re.escape(str(empty))}: empty file \(0 bytes\), not an image$"):
        load_folder_source(root, 16, 1)
    empty.unlink()

    os.symlink("b.png", root / "cat" / "a.png")
    os.symlink("a.png", root / "cat" / "b.png")
    with pytest.raises(DataError, match=rf"^{re.escape(str(root / 'cat' / 'a.png'))}: symbolic link loop$"):
        load_folder_source(root, 16, 1)
    (root / "cat" / "a.png").unlink()
    (root / "cat" / "b.png").unlink()

    os.symlink("gone.png", root / "dog" / "dangling.png")
    with pytest.raises(DataError, match=r"dangling.png: dangling symbolic link \(to gone.png, which does not exist\)"):
        load_folder_source(root, 16, 1)
    with pytest.raises(DataError, match="dangling symbolic link"):
        read_image_file(root / "dog" / "dangling.png", 16, 1)  # cvd predict names a file directly


def test_a_link_to_an_image_is_read(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=3)
    os.symlink(root / "cat" / "0.png", root / "dog" / "linked.png")
    pools = load_folder_source(root, 16, 1)
    assert "dog/linked.png" in pools.files and pools.files[0] == "cat/0.png"
    assert np.array_equal(pools.x_train[pools.files.index("dog/linked.png")], pools.x_train[0])


# ------------------------------------------------------------------------ bit depths
def test_16_bit_png_keeps_the_high_byte(tmp_path):
    values = np.array([[0, 255, 256, 1000, 32768, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode == "I;16"
    assert read_image_file(path, None, 1)[..., 0].tolist() == [[0, 0, 1, 3, 128, 255]]
    assert read_image_file(path, None, 3)[0, :, 0].tolist() == [0, 0, 1, 3, 128, 255]


def test_1_bit_png_is_black_and_white(tmp_path):
    image = Image.new("1", (4, 1))
    image.putpixel((1, 0), 1)
    path = save(image, tmp_path / "bits.png")
    assert read_image_file(path, None, 1)[..., 0].tolist() == [[0, 255, 0, 0]]


def test_palette_png_gives_its_colours(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.putpixel((1, 0), 1)
    path = save(image, tmp_path / "palette.png")
    assert read_image_file(path, None, 3)[0].tolist() == [[255, 0, 0], [0, 0, 255]]  # RGB
    assert read_image_file(path, None, 1)[0, :, 0].tolist() == [76, 29]  # 0.299 R, 0.114 B


def test_cmyk_jpeg_is_read_as_rgb(tmp_path):
    path = save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=100)  # red ink
    rgb = read_image_file(path, None, 3).astype(int)
    assert np.abs(rgb - [255, 0, 0]).max() <= 3


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("L", (6, 4), value) for value in (10, 200, 90)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(path).n_frames == 3
    assert (read_image_file(path, None, 1) == 10).all()
    assert (read_image_file(path, None, 3) == 10).all()


def test_gif_files_are_found_in_class_folders(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=3)
    Image.new("L", (6, 4), 77).save(root / "dog" / "still.gif")
    pools = load_folder_source(root, 8, 1)
    assert (pools.x_train[pools.files.index("dog/still.gif")] == 77).all()


def test_exif_orientation_is_applied(tmp_path):
    """EXIF orientation 6 ("rotate 90° clockwise to view"): a 24x16 picture with a white top-left
    square is read 16 wide and 24 high, the square at the top right, in gray and in colour."""
    pixels = np.zeros((16, 24, 3), dtype=np.uint8)
    pixels[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.fromarray(pixels), tmp_path / "rotated.jpg", exif=exif, quality=100)
    for channels in (1, 3):
        image = read_image_file(path, None, channels)[..., 0].astype(int)
        assert image.shape == (24, 16)
        assert image[:8, 8:].min() > 200
        image[:8, 8:] = 0
        assert image.max() < 50


# --------------------------------------------------------------- names of class folders
def test_class_folders_with_spaces_and_non_ascii_names(workdir):
    root = make_folder(workdir / "imgs", classes=("große Katze", "small dog", "ñandú"), per_class=8)
    manifest = prepare.run(config(dataset="folder", path=str(root)))
    names = ["große Katze", "small dog", "ñandú"]
    assert manifest["class_names"] == names
    assert sorted(manifest["counts_per_class"]["train"]) == sorted(names)
    stored = json.loads((workdir / "data/prepared/manifest.json").read_text(encoding="utf-8"))
    assert stored["class_names"] == names
    assert load_split().class_names == names


# ------------------------------------------------------------------------- duplicates
def test_duplicates_across_classes_are_recorded_with_one_warning(workdir, capsys):
    root = make_folder(workdir / "imgs", per_class=6)
    shutil.copy(root / "cat" / "0.png", root / "dog" / "copy.png")
    (root / "cat" / "sub").mkdir()
    shutil.copy(root / "cat" / "0.png", root / "cat" / "sub" / "0 again.png")
    shutil.copy(root / "dog" / "3.jpg", root / "cat" / "3 from dog.jpg")
    assert cv2.imwrite(str(root / "dog" / "again.bmp"), cv2.imread(str(root / "cat" / "2.png")))  # bytes differ
    manifest = prepare.run(config(dataset="folder", path=str(root)))
    duplicates = manifest["duplicates"]
    assert duplicates["across_classes"] == [
        {"files": ["cat/0.png", "cat/sub/0 again.png", "dog/copy.png"], "classes": ["cat", "dog"]},
        {"files": ["cat/3 from dog.jpg", "dog/3.jpg"], "classes": ["cat", "dog"]}]
    assert duplicates["across_classes_count"] == 2
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1
    assert warning[0].startswith("warning: duplicate images: 2 image(s) found under two or more classes "
                                 "(e.g. cat/0.png, cat/sub/0 again.png, dog/copy.png: classes cat, dog)")
    assert json.loads((workdir / "data/prepared/manifest.json").read_text())["duplicates"] == duplicates


def test_images_in_two_parts_of_the_split_are_counted(workdir, capsys):
    """Every cat is the same picture: each cat in val and test equals a training cat."""
    root = make_folder(workdir / "imgs", per_class=10)
    for i in range(1, 10):
        (root / "cat" / f"{i}{'.png' if i % 2 == 0 else '.jpg'}").unlink()
        shutil.copy(root / "cat" / "0.png", root / "cat" / f"copy{i}.png")
    manifest = prepare.run(config(dataset="folder", path=str(root)))
    cats = {part: manifest["counts_per_class"][part]["cat"] for part in ("train", "val", "test")}
    assert min(cats.values()) >= 1
    assert manifest["duplicates"]["across_parts"] == {"train_val": cats["val"], "train_test": cats["test"],
                                                      "val_test": cats["test"]}
    assert manifest["duplicates"]["across_classes_count"] == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warning == [f"warning: duplicate images: {cats['val']} val image(s) identical to train images; "
                       f"{cats['test']} test image(s) identical to train images; {cats['test']} test image(s) "
                       f"identical to val images; listed under 'duplicates' in the manifest"]


def test_no_duplicates_no_warning(workdir, capsys):
    manifest = prepare.run(config(dataset="folder", path=str(make_folder(workdir / "imgs", per_class=5))))
    assert manifest["duplicates"] == {"across_classes": [], "across_classes_count": 0,
                                      "across_parts": {"train_val": 0, "train_test": 0, "val_test": 0}}
    assert "warning:" not in capsys.readouterr().err


# ------------------------------------------------------------------- class too small
def test_class_too_small_names_its_folder_and_count(workdir):
    root = make_folder(workdir / "imgs", classes=("cat", "dog", "eel"), per_class=6)
    for path in sorted((root / "eel").iterdir())[2:]:
        path.unlink()
    with pytest.raises(DataError) as info:
        prepare.run(config(dataset="folder", path=str(root)))
    assert str(info.value) == (
        f"{root / 'eel'}: class folder has 2 image(s); the stratified split (data.test_fraction 0.2 split off "
        f"first, then data.val_fraction 0.15) needs at least 3 per class: add images to it or remove it")
    assert not (workdir / "data").exists()


def test_class_too_small_with_an_official_test_split():
    pools = Pools(np.zeros((7, 4, 4), np.uint8), np.array([0, 0, 0, 1, 1, 1, 2]), None, None, ["a", "b", "c"])
    with pytest.raises(DataError, match=r"^class 'c' has 1 image\(s\); the stratified split \(data.val_fraction "
                                        r"0.15\) needs at least 2 per class"):
        check_class_sizes(pools, pools.y_train, 0.15, None)


@pytest.mark.parametrize("test_fraction", [0.1, 0.2, 0.35, 0.5])
def test_the_minimum_is_what_scikit_learn_needs(test_fraction):
    """A class at the minimum (beside two large ones) splits for any seed; one image fewer is
    refused before splitting."""
    from sklearn.model_selection import train_test_split

    def labels(small: int) -> np.ndarray:
        return np.repeat([0, 1, 2], [30, 30, small])

    small = 2
    while small < min_images_per_class(len(labels(small)), test_fraction):
        small += 1
    assert small <= 4
    y = labels(small)
    for seed in range(20):
        _, _, y_pool, _ = train_test_split(y, y, test_size=test_fraction, stratify=y, random_state=seed)
        train_test_split(y_pool, y_pool, test_size=0.15, stratify=y_pool, random_state=seed)
    short = labels(small - 1)
    pools = Pools(np.zeros((len(short), 2, 2), np.uint8), short, None, None, ["a", "b", "c"])
    with pytest.raises(DataError, match=rf"^class 'c' has {small - 1} image\(s\)"):
        check_class_sizes(pools, short, 0.15, test_fraction)

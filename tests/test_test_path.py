"""A folder data set with its own test folder (``data.test_path``, issue 21 item 5): the common
train/ + test/ layout. The training folder is split into train + validation, the test folder is
the test split, class names must match, and files present in both folders are reported."""
from __future__ import annotations

import copy
import json
import shutil

import cv2
import numpy as np
import pytest
import yaml

from pipeline import prepare
from pipeline.config import parse_config
from pipeline.datasets import load_source
from pipeline.errors import ConfigError, DataError
from pipeline.io import load_split

from helpers import REPO_ROOT, make_folder

CLASSES = ("ant", "bee", "cow")
TRAIN_PER_CLASS = 10
TEST_PER_CLASS = {"ant": 3, "bee": 4, "cow": 5}
TRAIN_VALUES, TEST_VALUES = 10, 150  # every image one grey value, its own, from these up


@pytest.fixture
def workdir(mlflow_tmp):
    return mlflow_tmp


def grey_folder(root, counts: dict[str, int], first_value: int):
    """One class folder per entry of 8x8 grey PNGs, each of its own value (so that a prepared
    image tells which folder, and which file, it came from)."""
    value = first_value
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(root / name / f"{i}.png"), np.full((8, 8), value, np.uint8))
            value += 1
    return root


@pytest.fixture
def folders(tmp_path):
    train = grey_folder(tmp_path / "train", dict.fromkeys(CLASSES, TRAIN_PER_CLASS), TRAIN_VALUES)
    test = grey_folder(tmp_path / "test", TEST_PER_CLASS, TEST_VALUES)
    return train, test


def config(**data):
    raw = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    raw["seed"] = data.pop("seed", raw["seed"])
    raw["data"].update({"dataset": "folder", "image_size": 8} | data)
    return parse_config(raw)


def values(images: np.ndarray) -> set[int]:
    return {int(image.flat[0]) for image in images}


def test_the_test_folder_is_the_test_split_and_the_training_folder_the_rest(workdir, folders):
    train, test = folders
    manifest = prepare.run(config(path=str(train), test_path=str(test)))
    split = load_split()
    assert manifest["counts_per_class"]["test"] == TEST_PER_CLASS
    assert values(split.x["test"]) == set(range(TEST_VALUES, TEST_VALUES + sum(TEST_PER_CLASS.values())))
    training = values(np.concatenate([split.x["train"], split.x["val"]]))
    assert training == set(range(TRAIN_VALUES, TRAIN_VALUES + TRAIN_PER_CLASS * len(CLASSES)))
    assert len(split.y["train"]) + len(split.y["val"]) == TRAIN_PER_CLASS * len(CLASSES)
    assert len(split.y["val"]) == 5 and sorted(np.bincount(split.y["val"])) == [1, 2, 2]  # 0.15 of 30, stratified
    assert manifest["test_path"] == str(test) and manifest["official_test_split"] is False
    assert manifest["sources"] == [str(train), str(test)]
    assert json.loads((workdir / "data/prepared/manifest.json").read_text())["test_path"] == str(test)


def test_the_split_is_seeded_and_the_test_folder_stays_whole(workdir, folders):
    train, test = folders
    first = load_source("folder", str(train), 8, 1, test_path=str(test))
    again = load_source("folder", str(train), 8, 1, test_path=str(test))
    assert first.files == again.files and first.test_files == again.test_files
    runs = {}
    for seed in (42, 42, 7):
        prepare.run(config(path=str(train), test_path=str(test), seed=seed))
        split = load_split()
        runs.setdefault(seed, []).append({part: split.x[part].tobytes() for part in ("train", "val", "test")})
    assert runs[42][0] == runs[42][1]
    assert runs[7][0]["val"] != runs[42][0]["val"]
    assert runs[7][0]["test"] == runs[42][0]["test"]


def test_limit_per_class_applies_to_the_test_folder_too(folders):
    from pipeline.splitting import split_pools

    train, test = folders
    pools = load_source("folder", str(train), 8, 1, test_path=str(test))
    _, y = split_pools(pools, seed=0, val_fraction=0.25, test_fraction=0.2, limit_per_class=4)
    assert np.bincount(y["test"]).tolist() == [3, 4, 4]
    assert len(y["train"]) + len(y["val"]) == 4 * len(CLASSES)


def test_class_folders_that_differ_are_one_line_naming_both_folders(tmp_path):
    train = make_folder(tmp_path / "train", classes=("cat", "dog", "eel"))
    test = make_folder(tmp_path / "test", classes=("cat", "dog", "fox", "gnu"))
    with pytest.raises(DataError) as err:
        load_source("folder", str(train), 16, 1, test_path=str(test))
    assert str(err.value) == (f"{test}: data.test_path must hold the same class folders as data.path ({train}): "
                              f"only in {train}: eel; only in {test}: fox, gnu")


def test_a_test_path_that_is_no_folder_is_named(tmp_path):
    train = make_folder(tmp_path / "train")
    with pytest.raises(DataError, match=f"^{tmp_path / 'nothing'}: not a directory \\(data.test_path must hold"):
        load_source("folder", str(train), 16, 1, test_path=str(tmp_path / "nothing"))


def test_test_folder_images_get_the_same_checks(tmp_path):
    train = make_folder(tmp_path / "train", size=(4, 4))
    test = make_folder(tmp_path / "test", size=(8, 8))
    with pytest.raises(DataError, match=f"^{test / 'cat' / '0.png'}: 8 x 8 pixels is above the limit of 16"):
        load_source("folder", str(train), 16, 1, max_pixels=16, test_path=str(test))


@pytest.mark.parametrize("dataset", ["digits", "mnist"])
def test_test_path_with_another_dataset_is_one_config_line(dataset):
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["data"] |= {"dataset": dataset, "path": None if dataset == "digits" else "idx", "test_path": "test"}
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert str(err.value) == (f"params.yaml: data.test_path = 'test': only for dataset 'folder' (a second folder "
                              f"of class folders as the test split), not '{dataset}'")


def test_files_in_both_folders_are_reported(workdir, folders, capsys):
    train, test = folders
    shutil.copy(train / "ant" / "0.png", test / "ant" / "copy.png")  # the same class in both folders
    shutil.copy(train / "bee" / "1.png", test / "cow" / "moved.png")  # and under another class
    manifest = prepare.run(config(path=str(train), test_path=str(test)))
    duplicates = manifest["duplicates"]
    assert duplicates["in_both_folders"] == [{"files": ["ant/0.png", str(test / "ant" / "copy.png")]},
                                             {"files": ["bee/1.png", str(test / "cow" / "moved.png")]}]
    assert duplicates["in_both_folders_count"] == 2
    assert duplicates["across_classes"] == [{"files": ["bee/1.png", str(test / "cow" / "moved.png")],
                                             "classes": ["bee", "cow"]}]
    parts = duplicates["across_parts"]
    assert parts["train_test"] + parts["val_test"] == 2 and parts["train_val"] == 0
    warning = capsys.readouterr().err
    assert f"2 file(s) of data.test_path also in data.path (e.g. {test / 'ant' / 'copy.png'} = ant/0.png)" in warning

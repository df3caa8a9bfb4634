"""The prepare stage: deterministic stratified split, manifest, atomic output."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from pipeline import prepare
from pipeline.config import parse_config
from pipeline.errors import DataError
from pipeline.io import load_split

from helpers import REPO_ROOT, make_folder, make_idx_dir


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


def config(**data_overrides):
    raw = copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    seed = data_overrides.pop("seed", None)
    raw["data"].update(data_overrides)
    if seed is not None:
        raw["seed"] = seed
    return parse_config(raw)


def test_digits_split_is_stratified_and_deterministic(workdir):
    manifest = prepare.run(config())
    split = load_split()
    assert split.image_shape == (32, 32, 1) and split.x["train"].dtype == np.uint8
    assert manifest["counts"] == {"train": 1221, "val": 216, "test": 360}
    assert sum(manifest["counts"].values()) == 1797
    overall = np.bincount(np.concatenate(list(split.y.values()))) / 1797
    for part in ("train", "val", "test"):
        share = np.bincount(split.y[part], minlength=10) / len(split.y[part])
        assert np.abs(share - overall).max() < 0.02, part
    first = manifest["sha256"]
    assert prepare.run(config())["sha256"] == first
    assert prepare.run(config(seed=7))["sha256"] != first


def test_no_sample_in_two_splits(workdir):
    prepare.run(config(image_size=None))
    split = load_split()
    rows = {part: {x.tobytes() for x in split.x[part]} for part in ("train", "val", "test")}
    # digits has a few exact duplicate images, so compare counts rather than demand disjoint sets
    assert len(rows["train"] & rows["test"]) < 10


def test_manifest_and_no_mlflow(workdir):
    """The split's manifest; no MLflow store is touched (compare logs prepare's run: test_data_runs.py)."""
    manifest = prepare.run(config())
    assert manifest["counts_per_class"]["test"]["0"] == 36
    assert (workdir / "data/prepared/manifest.json").is_file()
    assert not (workdir / "mlflow.db").exists()


def test_official_test_split_and_limit(workdir):
    make_idx_dir(workdir / "idx", n_train=200, n_test=50)
    manifest = prepare.run(config(dataset="mnist", path=str(workdir / "idx"), image_size=None, limit_per_class=10))
    split = load_split()
    assert manifest["official_test_split"] is True
    assert manifest["counts"]["test"] == 50  # 5 per class, below the cap of 10
    assert len(split.y["train"]) + len(split.y["val"]) == 100
    assert split.image_shape == (28, 28, 1)


def test_failure_writes_nothing(workdir):
    root = make_folder(workdir / "imgs")
    (root / "dog" / "broken.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="broken.jpg"):
        prepare.run(config(dataset="folder", path=str(root)))
    assert not (workdir / "data").exists()


def test_too_few_images_to_stratify(workdir):
    root = make_folder(workdir / "imgs", per_class=2)
    with pytest.raises(DataError, match="stratified split"):
        prepare.run(config(dataset="folder", path=str(root)))
    assert not (workdir / "data").exists()


def test_deskew_straightens_every_split_and_is_recorded(workdir):
    from pipeline.preprocessing import deskew_batch, slants

    plain_manifest = prepare.run(config())
    plain = load_split()
    manifest = prepare.run(config(deskew=True))
    deskewed = load_split()
    assert (plain_manifest["deskew"], manifest["deskew"]) == (False, True)
    assert manifest["sha256"] != plain_manifest["sha256"]
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(deskewed.y[part], plain.y[part])
        np.testing.assert_array_equal(deskewed.x[part], deskew_batch(plain.x[part]))
    before, _ = slants(plain.x["train"])
    after, _ = slants(deskewed.x["train"])
    assert np.abs(after).mean() < 0.1 * np.abs(before).mean()

"""Every source on tiny generated data, plus the real IDX files when present."""
from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from pipeline.datasets import (FASHION_CLASSES, load_cifar10_source, load_digits_source, load_folder_source,
                               load_idx_source, read_idx)
from pipeline.preprocessing import resize_batch
from pipeline.errors import DataError

from helpers import make_folder, make_idx_dir, write_idx


def test_digits_source_is_bundled_and_scaled():
    pools = load_digits_source()
    assert pools.x_train.shape == (1797, 8, 8) and pools.x_train.dtype == np.uint8
    assert pools.x_train.max() == 255 and pools.x_test is None
    assert pools.class_names == [str(i) for i in range(10)]


def test_idx_source_reads_generated_files(tmp_path):
    pools = load_idx_source(make_idx_dir(tmp_path), "fashion_mnist")
    assert pools.x_train.shape == (40, 28, 28) and pools.x_test.shape == (20, 28, 28)
    assert pools.y_train.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert pools.class_names == FASHION_CLASSES


def test_idx_truncated_file_names_the_file(tmp_path):
    make_idx_dir(tmp_path)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_idx(bad, np.zeros((20, 28, 28)), truncate=100)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: truncated or oversized IDX file"):
        load_idx_source(tmp_path, "mnist")


def test_idx_count_mismatch(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(39))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: 39 labels for 40 images"):
        load_idx_source(tmp_path, "mnist")


def test_idx_missing_files_say_what_is_expected(tmp_path):
    with pytest.raises(DataError) as err:
        load_idx_source(tmp_path, "mnist")
    message = str(err.value)
    assert str(tmp_path) in message and "train-images-idx3-ubyte.gz" in message
    assert "keras.datasets.mnist" in message


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"\x00\x00\x0d\x03" + b"\x00" * 40)
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        read_idx(path, 3)


def test_real_idx_files(shared_datasets):
    for dataset, folder in (("mnist", "mnist"), ("fashion_mnist", "fashion-mnist")):
        pools = load_idx_source(shared_datasets / folder, dataset)
        assert pools.x_train.shape == (60000, 28, 28) and pools.x_test.shape == (10000, 28, 28)
        assert np.bincount(pools.y_test).tolist() == ([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
                                                       if dataset == "mnist" else [1000] * 10)


def test_folder_source_reads_resizes_and_counts_skipped(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "cat" / "notes.txt").write_text("not an image")
    pools = load_folder_source(root, 16, 3)
    assert pools.x_train.shape == (8, 16, 16, 3)
    assert pools.class_names == ["cat", "dog"] and pools.y_train.tolist() == [0] * 4 + [1] * 4
    assert pools.skipped == {"other_extensions": 1}
    gray = load_folder_source(root, 16, 1)
    assert gray.x_train.shape == (8, 16, 16, 1)


def test_folder_corrupt_image_names_the_file(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"broken.png: corrupt or unreadable image"):
        load_folder_source(root, 16, 1)


def test_folder_empty_class_and_too_few_classes(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "bird").mkdir()
    with pytest.raises(DataError, match=r"bird: class folder has no images"):
        load_folder_source(root, 16, 1)
    single = make_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(DataError, match="found 1 class folder"):
        load_folder_source(single, 16, 1)


def write_cifar_batches(folder, rng) -> None:
    """Batches as the official python version holds them: a dict of a uint8 array and a label list."""
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10))}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))


def test_cifar10_batches(tmp_path):
    write_cifar_batches(tmp_path, np.random.default_rng(2))
    pools = load_cifar10_source(tmp_path)
    assert pools.x_train.shape == (50, 32, 32, 3) and pools.x_test.shape == (10, 32, 32, 3)
    assert pools.class_names[3] == "c3"
    raw = pickle.loads((tmp_path / "test_batch").read_bytes())[b"data"][0]
    assert np.array_equal(pools.x_test[0][..., 0].ravel(), raw[:1024])  # red plane first in CIFAR layout
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3: not a readable CIFAR-10"):
        load_cifar10_source(tmp_path)


class _RunsCode:
    """Unpickling this calls ``function(argument)``: what a crafted batch file would do."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("attack", ["os.system", "builtins.eval"])
def test_cifar10_crafted_pickle_runs_no_code(tmp_path, attack):
    import builtins
    import os

    write_cifar_batches(tmp_path, np.random.default_rng(2))
    marker = tmp_path / "pwned"
    payload = (_RunsCode(os.system, f"touch {marker}") if attack == "os.system"
               else _RunsCode(builtins.eval, f"open({str(marker)!r}, 'w')"))
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": payload, b"labels": [0]}))
    with pytest.raises(DataError) as err:
        load_cifar10_source(tmp_path)
    message = str(err.value)
    assert "data_batch_1: not a readable CIFAR-10 python batch" in message and "\n" not in message
    assert not marker.exists()
def test_resize_batch_channels_and_size():
    images = np.random.default_rng(3).integers(0, 256, (5, 8, 8), dtype=np.uint8)
    out = resize_batch(images, 32, 3)
    assert out.shape == (5, 32, 32, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 2])
    assert resize_batch(images, None, 1).shape == (5, 8, 8, 1)

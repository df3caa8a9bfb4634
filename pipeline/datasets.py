"""Image sources for ``prepare``: each returns uint8 NHWC pools with int labels.

A source returns ``Pools``: the training pool, the official test pool when the dataset
has one (else ``None``), the class names and bookkeeping for the manifest. Every reader
checks what it reads and raises :class:`DataError` naming the offending file.

Image files are read by :mod:`pipeline.image_files` (checked before decoding).
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.cifar10 import read_cifar10
from pipeline.config_schema import DATASETS
from pipeline.errors import DataError
from pipeline.preprocessing import resize_batch
from pipeline.image_files import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, decode_image_file

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@dataclass
class Pools:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str]
    sources: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    files: list[str] | None = None  # the folder dataset: each training-pool image's file
    class_folders: list[str] | None = None  # the folder dataset: each class's folder
    test_files: list[str] | None = None  # with data.test_path: each test image's file, relative to it


def load_digits_source() -> Pools:
    """scikit-learn's bundled 8×8 digits (1,797 images, values 0–16), scaled to 0–255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return Pools(images, bunch.target.astype(np.int64), None, None, [str(n) for n in bunch.target_names],
                 sources=["sklearn.datasets.load_digits"])


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) of unsigned bytes, checking header and length."""
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot be read as an IDX file ({exc})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, no header)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim != expected_ndim:
        raise DataError(f"{path}: not an unsigned-byte IDX file with {expected_ndim} dimension(s) "
                        f"(magic {raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(f"{path}: truncated or oversized IDX file: header says {dims} = {expected:,} bytes "
                        f"of data, found {len(raw) - header:,}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem, directory / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(stem)


def load_idx_source(directory: str | Path, dataset: str) -> Pools:
    """MNIST / Fashion-MNIST from their four original IDX files (official test split kept)."""
    directory = Path(directory)
    files = {}
    missing = []
    for key, stem in IDX_FILES.items():
        try:
            files[key] = _find_idx(directory, stem)
        except FileNotFoundError:
            missing.append(f"{stem}.gz")
    if missing:
        raise DataError(
            f"{directory}: {dataset} files missing: {', '.join(missing)}. Expected the four original IDX "
            f"files ({', '.join(s + '.gz' for s in IDX_FILES.values())}) in that directory; on a networked "
            f"machine keras.datasets.{dataset}.load_data() or the dataset's website provides them."
        )
    arrays = {key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in files.items()}
    for part in ("train", "test"):
        n_img, n_lab = len(arrays[f"{part}_images"]), len(arrays[f"{part}_labels"])
        if n_img != n_lab:
            raise DataError(f"{files[f'{part}_labels']}: {n_lab:,} labels for {n_img:,} images in "
                            f"{files[f'{part}_images']}")
    names = FASHION_CLASSES if dataset == "fashion_mnist" else MNIST_CLASSES
    return Pools(arrays["train_images"], arrays["train_labels"].astype(np.int64),
                 arrays["test_images"], arrays["test_labels"].astype(np.int64), list(names),
                 sources=[str(p) for p in files.values()])


def load_cifar10_source(directory: str | Path) -> Pools:
    """CIFAR-10 from the official python-pickle batches (data_batch_1..5, test_batch)."""
    x_train, y_train, x_test, y_test, class_names, sources = read_cifar10(directory)
    return Pools(x_train, y_train, x_test, y_test, class_names, sources=sources)


def read_image_file(path: str | Path, image_size: int | None, channels: int,
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One PNG/JPEG/BMP/TIFF/GIF file as ``prepare`` reads it: :func:`decode_image_file`, then
    resized to ``image_size`` (:func:`resize_batch`); shape ``(image_size, image_size, channels)``.
    ``cvd predict`` reads new images with it."""
    return resize_batch(decode_image_file(path, channels, max_pixels)[None], image_size, channels)[0]


def _class_files(class_dir: Path) -> list[Path]:
    """The files of a class folder (recursively, sorted, hidden ones left out), broken links included
    so that the reader names them."""
    return sorted(p for p in class_dir.rglob("*") if not p.name.startswith(".")
                  and (p.is_file() or (p.is_symlink() and not p.exists())))


def _class_dirs(directory: Path, what: str) -> list[Path]:
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory ({what} must hold one sub-folder per class)")
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_class_folders(directory: Path, class_dirs: list[Path], image_size: int, channels: int,
                        max_pixels: int) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """The images of each class folder (label = its index), their paths relative to ``directory``
    and how many files were skipped for their extension."""
    images, labels, names, skipped = [], [], [], 0
    for label, class_dir in enumerate(class_dirs):
        files = _class_files(class_dir)
        usable = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        skipped += len(files) - len(usable)
        if not usable:
            raise DataError(f"{class_dir}: class folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
        for path in usable:
            images.append(read_image_file(path, image_size, channels, max_pixels))
            labels.append(label)
            names.append(str(path.relative_to(directory)))
    return np.stack(images), np.asarray(labels, dtype=np.int64), names, skipped


def _check_same_classes(train_dir: Path, train: list[str], test_dir: Path, test: list[str]) -> None:
    """One line naming both folders and the class folders only one of them has."""
    only = {folder: sorted(set(mine) - set(other))
            for folder, mine, other in ((train_dir, train, test), (test_dir, test, train))}
    if any(only.values()):
        differ = "; ".join(f"only in {folder}: {', '.join(names)}" for folder, names in only.items() if names)
        raise DataError(f"{test_dir}: data.test_path must hold the same class folders as data.path "
                        f"({train_dir}): {differ}")


def load_folder_source(directory: str | Path, image_size: int | None, channels: int,
                       max_pixels: int = DEFAULT_MAX_PIXELS, test_directory: str | Path | None = None) -> Pools:
    """One sub-folder per class of PNG/JPEG/BMP/TIFF/GIF images, each read by :func:`read_image_file`.
    With ``test_directory`` (``data.test_path``), its class folders (the same names) are the test pool."""
    directory = Path(directory)
    class_dirs = _class_dirs(directory, "data.path")
    if image_size is None:
        raise DataError(f"{directory}: data.image_size must be set for the folder dataset (images differ in size)")
    if len(class_dirs) < 2:
        raise DataError(f"{directory}: found {len(class_dirs)} class folder(s); need at least 2 "
                        f"(one sub-folder per class)")
    class_names = [p.name for p in class_dirs]
    test_dirs = None
    if test_directory is not None:
        test_directory = Path(test_directory)
        test_dirs = _class_dirs(test_directory, "data.test_path")
        _check_same_classes(directory, class_names, test_directory, [p.name for p in test_dirs])
    x, y, names, skipped = _read_class_folders(directory, class_dirs, image_size, channels, max_pixels)
    pools = Pools(x, y, None, None, class_names, sources=[str(directory)], skipped={"other_extensions": skipped},
                  files=names, class_folders=[str(p) for p in class_dirs])
    if test_dirs is not None:
        pools.x_test, pools.y_test, pools.test_files, skipped = _read_class_folders(
            test_directory, test_dirs, image_size, channels, max_pixels)
        pools.sources.append(str(test_directory))
        pools.skipped["other_extensions"] += skipped
    return pools


def load_source(dataset: str, path: str | None, image_size: int | None, channels: int,
                max_pixels: int = DEFAULT_MAX_PIXELS, test_path: str | None = None) -> Pools:
    """The images of ``dataset`` (one of :data:`DATASETS`) read from ``path`` (and the folder
    dataset's test split from ``test_path``, when given)."""
    if test_path is not None and dataset != "folder":
        raise DataError(f"data.test_path is only for dataset 'folder', not '{dataset}'")
    if dataset == "digits":
        return load_digits_source()
    if path is None:
        raise DataError(f"data.path is required for dataset '{dataset}'")
    if not Path(path).exists():
        raise DataError(f"{path}: data.path does not exist (dataset '{dataset}')")
    if dataset in ("mnist", "fashion_mnist"):
        return load_idx_source(path, dataset)
    if dataset == "cifar10":
        return load_cifar10_source(path)
    if dataset == "folder":
        return load_folder_source(path, image_size, channels, max_pixels, test_path)
    raise DataError(f"unknown dataset '{dataset}'; allowed: {', '.join(DATASETS)}")

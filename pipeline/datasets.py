"""Image sources for ``prepare``: each returns uint8 NHWC pools with int labels.

A source returns ``Pools``: the training pool, the official test pool when the dataset
has one (else ``None``), the class names and bookkeeping for the manifest. Every reader
checks what it reads and raises :class:`DataError` naming the offending file.

Image files are read by :mod:`pipeline.image_files` (checked before decoding).
"""
from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles what the official CIFAR-10 batches hold and nothing else.

    Dicts, lists, bytes, strings and numbers need no globals; numpy arrays are rebuilt
    from the three names below. Any other global (``os.system``, ``builtins.eval``, ...)
    is refused before it is looked up, so a crafted file cannot run code.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refuses to load the global {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            data = _ArrayUnpickler(fh, encoding="bytes").load()
    except Exception as exc:
        raise DataError(f"{path}: not a readable CIFAR-10 python batch ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a readable CIFAR-10 python batch (holds a {type(data).__name__}, not a dict)")
    return data


def load_cifar10_source(directory: str | Path) -> Pools:
    """CIFAR-10 from the official python-pickle batches (data_batch_1..5, test_batch)."""
    directory = Path(directory)
    if (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise DataError(f"{directory}: CIFAR-10 batches missing: {', '.join(missing)} (expected the official "
                        f"python version: data_batch_1..5, test_batch, batches.meta)")

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        d = _unpickle(directory / name)
        try:
            data = np.asarray(d[b"data"], dtype=np.uint8)
            labels = np.asarray(d[b"labels"], dtype=np.int64)
        except KeyError as exc:
            raise DataError(f"{directory / name}: missing key {exc.args[0]!r} in CIFAR-10 batch") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise DataError(f"{directory / name}: expected N×3072 data and N labels, got {data.shape} "
                            f"and {len(labels)} labels")
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels

    parts = [batch(n) for n in names[:5]]
    x_test, y_test = batch("test_batch")
    class_names = [f"class_{i}" for i in range(10)]
    if (directory / "batches.meta").is_file():
        meta = _unpickle(directory / "batches.meta")
        class_names = [n.decode() for n in meta.get(b"label_names", [])] or class_names
    return Pools(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                 x_test, y_test, class_names, sources=[str(directory / n) for n in names])


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


def load_folder_source(directory: str | Path, image_size: int | None, channels: int,
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> Pools:
    """One sub-folder per class of PNG/JPEG/BMP/TIFF/GIF images, each read by :func:`read_image_file`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory (data.path must hold one sub-folder per class)")
    if image_size is None:
        raise DataError(f"{directory}: data.image_size must be set for the folder dataset (images differ in size)")
    class_dirs = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataError(f"{directory}: found {len(class_dirs)} class folder(s); need at least 2 "
                        f"(one sub-folder per class)")
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
    return Pools(np.stack(images), np.asarray(labels, dtype=np.int64), None, None,
                 [p.name for p in class_dirs], sources=[str(directory)], skipped={"other_extensions": skipped},
                 files=names, class_folders=[str(p) for p in class_dirs])


def load_source(dataset: str, path: str | None, image_size: int | None, channels: int,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> Pools:
    """The images of ``dataset`` (one of :data:`DATASETS`) read from ``path``."""
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
        return load_folder_source(path, image_size, channels, max_pixels)
    raise DataError(f"unknown dataset '{dataset}'; allowed: {', '.join(DATASETS)}")

"""Image sources for ``prepare``: each returns uint8 NHWC pools with int labels.

A source returns ``Pools``: the training pool, the official test pool when the dataset
has one (else ``None``), the class names and bookkeeping for the manifest. Every reader
checks what it reads and raises :class:`DataError` naming the offending file.

Image files (the ``folder`` dataset, ``cvd predict``, ``cvd visualize``) are untrusted input;
:func:`decode_image_file` is the one reader of them:

* **Size first.** The width and height are read from the file's header (Pillow reads only the
  header) and an image above ``data.max_pixels`` is refused before any pixel is decoded, so a
  decompression bomb (a 1.6 MB PNG of 40,000 x 40,000 pixels) costs nothing. Pillow's own
  bomb check is off while the header is read (ours replaces it); OpenCV's
  ``CV_IO_MAX_IMAGE_PIXELS`` and any other decoder error become the same one-line DataError.
* **Decoded by OpenCV to 8 bits**, grayscale or RGB: a 16-bit PNG keeps its high byte
  (value // 256), a 1-bit PNG becomes 0/255, a palette PNG its palette colours, a CMYK JPEG
  RGB, an animated GIF its first frame.
* **EXIF orientation is applied**: a JPEG whose EXIF says "rotate 90°" (orientation 6) is
  read upright, as photo viewers show it (OpenCV's default for 8-bit grayscale/RGB reads).
* **Links**: a dangling symbolic link or a link loop in a class folder is an error naming
  it, not a silently missing image. Empty (0-byte) files are errors too.
"""
from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.config import DATASETS
from pipeline.deskew import deskew_batch
from pipeline.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
DEFAULT_MAX_PIXELS = 100_000_000  # data.max_pixels: well above any photo (a 24 MP camera)
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


def resize_batch(images: np.ndarray, size: int | None, channels: int) -> np.ndarray:
    """Bring (N,H,W) or (N,H,W,C) uint8 images to (N,size,size,channels)."""
    import cv2

    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    if c != channels:
        if c == 1 and channels == 3:
            images = np.repeat(images, 3, axis=3)
        elif c == 3 and channels == 1:
            images = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in images])[..., None]
        else:
            raise DataError(f"cannot convert {c}-channel images to {channels} channels")
    if size is None or (h, w) == (size, size):
        return np.ascontiguousarray(images)
    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    out = np.empty((n, size, size, channels), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = cv2.resize(im, (size, size), interpolation=interp).reshape(size, size, channels)
    return out


def preprocess(images: np.ndarray, size: int | None, channels: int, deskew: bool = False) -> np.ndarray:
    """What every image goes through before any model sees it (``prepare``, ``cvd visualize``):
    :func:`resize_batch`, then :func:`pipeline.deskew.deskew_batch` when ``deskew``."""
    images = resize_batch(images, size, channels)
    return deskew_batch(images) if deskew else images


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


@contextlib.contextmanager
def _pillow_bomb_check_off():
    """Pillow's documented switch (``Image.MAX_IMAGE_PIXELS = None``) while only a header is
    read: its check would raise before the size is known, and :func:`check_pixels` replaces it."""
    from PIL import Image

    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def header_size(data: np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` from the header of an image file's bytes, without decoding the pixels;
    ``None`` when Pillow cannot read the header (the decoder then decides whether it is an image)."""
    from PIL import Image

    with _pillow_bomb_check_off():
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.size
        except Exception:  # noqa: BLE001 -- Pillow raises many kinds on a bad header
            return None


def check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise DataError(f"{path}: {width:,} x {height:,} pixels is above the limit of {max_pixels:,} "
                        f"(data.max_pixels): a decompression bomb or an image too large to prepare")


def _read_bytes(path: Path) -> np.ndarray:
    if path.is_symlink() and not path.exists():
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DataError(f"{path}: symbolic link loop") from None
        raise DataError(f"{path}: dangling symbolic link (to {os.readlink(path)}, which does not exist)")
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not buf.size:
        raise DataError(f"{path}: empty file (0 bytes), not an image")
    return buf


def decode_image_file(path: str | Path, channels: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One image file decoded to 8-bit grayscale ``(H, W)`` (``channels`` 1) or RGB ``(H, W, 3)``,
    after its header's size is checked against ``max_pixels`` (see the module docstring).

    Raises:
        DataError: naming the file: too many pixels, an empty file, a broken link, not readable or
            not decodable, or only decodable in a pixel format OpenCV cannot convert to 8-bit
            grayscale/RGB (e.g. a floating-point TIFF).
    """
    import cv2

    path = Path(path)
    buf = _read_bytes(path)
    size = header_size(buf)  # the bytes decoded below, not the file again
    if size is not None:
        check_pixels(path, *size, max_pixels)
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    try:
        image = cv2.imdecode(buf, flag)
        raw = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if image is None else None
    except cv2.error as exc:  # its pixel limit above a data.max_pixels raised past it, or a decoder bug
        reason = getattr(exc, "err", "") or " ".join(str(exc).split())[:200]
        if "CV_IO_MAX_IMAGE_PIXELS" in reason:
            reason = "above OpenCV's own pixel limit, the environment variable CV_IO_MAX_IMAGE_PIXELS (2^30 by default)"
        raise DataError(f"{path}: cannot be decoded: {reason}") from None
    if image is None:
        if raw is not None:  # a valid image whose pixel format has no 8-bit gray/RGB conversion
            c = 1 if raw.ndim == 2 else raw.shape[2]
            raise DataError(f"{path}: {c}-channel {raw.dtype} image cannot be converted to "
                            f"{channels}-channel 8-bit images")
        raise DataError(f"{path}: corrupt or unreadable image")
    if size is None:  # the header was not Pillow's to read: check what OpenCV decoded
        check_pixels(path, image.shape[1], image.shape[0], max_pixels)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if channels == 3 else image


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


def min_images_per_class(n_images: int, test_fraction: float | None) -> int:
    """The fewest images a class needs for ``prepare``'s stratified split of ``n_images``: scikit-learn
    stratifies a class only with >= 2 members, and when the test part is split off first
    (``test_fraction``; ``None`` with an official test split) the class's training share, at least
    ``floor(count * n_train / n_images)`` (``train_test_split``'s allocation), must still hold 2."""
    if test_fraction is None:
        return 2
    n_train = n_images - int(np.ceil(test_fraction * n_images))
    needed = 2
    while needed <= n_images and needed * n_train // n_images < 2:
        needed += 1
    return needed


def check_class_sizes(pools: Pools, y: np.ndarray, val_fraction: float, test_fraction: float | None) -> None:
    """One line naming the first class (its folder, for the folder dataset) with too few images in
    ``y`` for the stratified split, with its count and the minimum."""
    needed = min_images_per_class(len(y), test_fraction)
    counts = np.bincount(y, minlength=len(pools.class_names))
    for label, count in enumerate(counts):
        if count < needed:
            where = (f"{pools.class_folders[label]}: class folder" if pools.class_folders
                     else f"class {pools.class_names[label]!r}")
            steps = (f"data.test_fraction {test_fraction} split off first, then data.val_fraction {val_fraction}"
                     if test_fraction is not None else f"data.val_fraction {val_fraction}")
            raise DataError(f"{where} has {count} image(s); the stratified split ({steps}) needs at least "
                            f"{needed} per class: add images to it or remove it")


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

"""The one reader of untrusted image files (the ``folder`` dataset, ``cvd predict``,
``cvd visualize``): :func:`decode_image_file`.

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
import io
import os
from pathlib import Path

import numpy as np

from pipeline.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
DEFAULT_MAX_PIXELS = 100_000_000  # data.max_pixels: well above any photo (a 24 MP camera)


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

"""Atomic file output and the prepared-split file format.

Every stage writes through :func:`atomic_path`: the content goes to a temporary file in
the destination folder and is renamed into place only when complete, so a failure
never leaves a partial output for DVC to cache. A process killed mid-write (SIGKILL) cannot
remove its temporary file: the name holds the writer's pid, and the next write of the same
file removes those whose process is gone. A full disk or a read-only folder is one
:class:`~pipeline.errors.OutputError` line naming the file.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import glob
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from pipeline import layout
from pipeline.errors import DataError, OutputError

SPLITS = ("train", "val", "test")


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` if the block succeeds.

    The temporary file is created with mode 0o666, so the umask gives it the permissions
    any new file gets (``tempfile.mkstemp`` would make it 0o600).
    """
    dest = Path(dest)
    prefix, suffix = f".{dest.name}.", suffix or dest.suffix or ".tmp"
    tmp_path = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(dest.parent, prefix, suffix)
        tmp_path = _create_unique(dest.parent, f"{prefix}{os.getpid()}-", suffix)
        yield tmp_path
        os.replace(tmp_path, dest)
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            raise
        raise OutputError(f"{dest}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


# a full disk or quota, a read-only file system, no permission: the machine's state, not a bug
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _remove_orphans(folder: Path, prefix: str, suffix: str) -> None:
    """Remove the temporary files ``<prefix><pid>-<hex><suffix>`` left by a killed process."""
    import psutil

    for path in folder.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        pid = path.name[len(prefix):].partition("-")[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            path.unlink(missing_ok=True)


def _create_unique(folder: Path, prefix: str, suffix: str) -> Path:
    """Create a new empty file ``<prefix><random><suffix>`` in ``folder`` (never an existing one)."""
    for _ in range(100):
        path = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{folder}: no free temporary name after 100 tries")


def write_json(dest: str | Path, data: Any) -> None:
    """Write JSON with sorted keys and a trailing newline (stable bytes for equal data)."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n", encoding="utf-8")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found (run the stage that writes it first, or `dvc repro`)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def write_csv(dest: str | Path, rows: list[dict], fieldnames: list[str]) -> None:
    with atomic_path(dest) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fieldnames, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def write_bytes(dest: str | Path, data: bytes, suffix: str | None = None) -> None:
    with atomic_path(dest, suffix=suffix) as tmp:
        tmp.write_bytes(data)


def write_files(outputs: Mapping[Path, bytes]) -> None:
    """Write each ``{path: content}`` atomically (a stage renders everything first, then calls this)."""
    for dest, content in outputs.items():
        write_bytes(dest, content)


def save_npz(dest: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(dest, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


@dataclass(frozen=True)
class Split:
    """The prepared data every model reads: uint8 NHWC images and int labels per split."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    class_names: list[str]
    dataset: str
    sha256: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x["train"].shape[1:])


def split_digest(x: dict[str, np.ndarray], y: dict[str, np.ndarray], class_names: list[str]) -> str:
    """SHA-256 of the split's contents (not of the compressed file, whose bytes may vary)."""
    digest = hashlib.sha256()
    for name in SPLITS:
        for arr in (x[name], y[name]):
            digest.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
            digest.update(np.ascontiguousarray(arr).tobytes())
    digest.update("\n".join(class_names).encode())
    return digest.hexdigest()


def save_split(dest: str | Path, split: Split) -> None:
    arrays = {}
    for name in SPLITS:
        arrays[f"x_{name}"] = split.x[name]
        arrays[f"y_{name}"] = split.y[name]
    save_npz(dest, class_names=np.array(split.class_names), dataset=np.array(split.dataset),
             sha256=np.array(split.sha256), **arrays)


def load_split(path: str | Path = layout.SPLIT) -> Split:
    """Load ``prepare``'s output; the only way any later stage gets images."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found; run `cvd prepare` (or `dvc repro prepare`) first")
    try:
        with np.load(path, allow_pickle=False) as npz:
            x = {s: npz[f"x_{s}"] for s in SPLITS}
            y = {s: npz[f"y_{s}"] for s in SPLITS}
            names = [str(n) for n in npz["class_names"]]
            return Split(x, y, names, str(npz["dataset"]), str(npz["sha256"]))
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a valid prepared split ({exc}); rerun `cvd prepare`") from None

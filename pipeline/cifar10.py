"""CIFAR-10 from the official python version's batches, unpickled without running pickled code
(:class:`_ArrayUnpickler`); :func:`pipeline.datasets.load_cifar10_source` makes them pools."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from pipeline.errors import DataError


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


def read_cifar10(directory: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """CIFAR-10's official python-pickle batches (data_batch_1..5, test_batch): training images
    and labels, test images and labels, the class names and the files read."""
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
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            x_test, y_test, class_names, [str(directory / n) for n in names])

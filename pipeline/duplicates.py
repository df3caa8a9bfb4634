"""Duplicate images that bias the comparison: the same image under two classes, and the same
image in two parts of the split (a test image the models were trained on).

Across classes, for the folder dataset, two files are duplicates when their bytes are identical
(a file copied into a second class folder; a re-encoded copy is not found: OpenCV's grayscale
conversion alone differs between PNG and BMP by a grey level); for the array datasets (MNIST,
CIFAR-10, digits), when their pixels are. Across parts, two images are duplicates when their
pixels are identical as the models see them (after ``prepare``'s preprocessing).

``prepare`` records the result in the manifest (``duplicates``) and prints one warning line.
"""
from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

MAX_LISTED = 100  # groups listed in the manifest; the count covers all
PAIRS = (("train", "val"), ("train", "test"), ("val", "test"))


def _digests(images: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest() for image in images]


def _file_digests(root: Path, names: list[str]) -> list[bytes]:
    digests = []
    for name in names:
        with open(root / name, "rb") as fh:
            digests.append(hashlib.file_digest(fh, "blake2b").digest())
    return digests


def across_classes(pools) -> list[dict]:
    """Groups of identical images with different labels: ``{"files": [...], "classes": [...]}``, in
    the order of their first image. Files are the folder dataset's paths (relative to data.path),
    else ``train #i`` / ``test #i`` (the index in the dataset's training or official test pool)."""
    groups: dict[bytes, list[tuple[str, int]]] = defaultdict(list)
    if pools.files:
        members = [(_file_digests(Path(pools.sources[0]), pools.files), pools.files, pools.y_train)]
    else:
        members = [(_digests(pools.x_train), [f"train #{i}" for i in range(len(pools.x_train))], pools.y_train)]
        if pools.x_test is not None:
            members.append((_digests(pools.x_test), [f"test #{i}" for i in range(len(pools.x_test))], pools.y_test))
    for digests, names, labels in members:
        for digest, name, label in zip(digests, names, labels):
            groups[digest].append((name, int(label)))
    found = []
    for members in groups.values():
        labels = {label for _, label in members}
        if len(labels) > 1:
            found.append({"files": [name for name, _ in members],
                          "classes": [pools.class_names[label] for label in sorted(labels)]})
    return found


def across_parts(x: dict[str, np.ndarray]) -> dict[str, int]:
    """For each pair of parts ``a_b``: how many images of ``b`` are identical to an image of ``a``."""
    digests = {part: _digests(images) for part, images in x.items()}
    seen = {part: set(found) for part, found in digests.items()}
    return {f"{a}_{b}": sum(d in seen[a] for d in digests[b]) for a, b in PAIRS}


def find_duplicates(pools, x: dict[str, np.ndarray]) -> dict:
    """The manifest's ``duplicates`` entry for the pools read and the prepared parts ``x``."""
    groups = across_classes(pools)
    return {"across_classes": groups[:MAX_LISTED], "across_classes_count": len(groups),
            "across_parts": across_parts(x)}


def warning(entry: dict) -> str | None:
    """The one warning line for a ``duplicates`` entry, or ``None`` when there are none."""
    found = []
    if entry["across_classes_count"]:
        first = entry["across_classes"][0]
        files = ", ".join(first["files"][:3]) + (", ..." if len(first["files"]) > 3 else "")
        found.append(f"{entry['across_classes_count']} image(s) found under two or more classes "
                     f"(e.g. {files}: classes {', '.join(first['classes'])})")
    found += [f"{n} {pair.split('_')[1]} image(s) identical to {pair.split('_')[0]} images"
              for pair, n in entry["across_parts"].items() if n]
    if not found:
        return None
    return f"warning: duplicate images: {'; '.join(found)}; listed under 'duplicates' in the manifest"


def warn_duplicates(entry: dict) -> None:
    line = warning(entry)
    if line:
        print(line, file=sys.stderr)

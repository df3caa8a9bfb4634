"""Duplicate images that bias the comparison: the same image under two classes, and the same
image in two parts of the split (a test image the models were trained on).

Across classes, for the folder dataset, two files are duplicates when their bytes are identical
(a file copied into a second class folder; a re-encoded copy is not found: OpenCV's grayscale
conversion alone differs between PNG and BMP by a grey level); for the array datasets (MNIST,
CIFAR-10, digits), when their pixels are. Across parts, two images are duplicates when their
pixels are identical as the models see them (after ``prepare``'s preprocessing). With a separate
test folder (``data.test_path``) its files count too (named by their path under it), and the
files found in both folders are listed by name (``in_both_folders``), whatever their class.

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


def members(pools) -> list[tuple[list[bytes], list[str], np.ndarray]]:
    """(digests, names, labels) of the training pool and of the test pool, when the dataset has one.
    Names are the folder dataset's paths (relative to data.path; a test folder's joined to
    data.test_path), else ``train #i`` / ``test #i`` (the index in the dataset's pool)."""
    if pools.files:
        found = [(_file_digests(Path(pools.sources[0]), pools.files), pools.files, pools.y_train)]
        if pools.test_files:
            test_root = Path(pools.sources[1])
            found.append((_file_digests(test_root, pools.test_files),
                          [str(test_root / name) for name in pools.test_files], pools.y_test))
        return found
    found = [(_digests(pools.x_train), [f"train #{i}" for i in range(len(pools.x_train))], pools.y_train)]
    if pools.x_test is not None:
        found.append((_digests(pools.x_test), [f"test #{i}" for i in range(len(pools.x_test))], pools.y_test))
    return found


def across_classes(pools, pool_members) -> list[dict]:
    """Groups of identical images with different labels, ``{"files": [...], "classes": [...]}``, in
    the order of their first image (files named as in :func:`members`)."""
    groups: dict[bytes, list[tuple[str, int]]] = defaultdict(list)
    for digests, names, labels in pool_members:
        for digest, name, label in zip(digests, names, labels):
            groups[digest].append((name, int(label)))
    found = []
    for group in groups.values():
        labels = {label for _, label in group}
        if len(labels) > 1:
            found.append({"files": [name for name, _ in group],
                          "classes": [pools.class_names[label] for label in sorted(labels)]})
    return found


def across_parts(x: dict[str, np.ndarray]) -> dict[str, int]:
    """For each pair of parts ``a_b``: how many images of ``b`` are identical to an image of ``a``."""
    digests = {part: _digests(images) for part, images in x.items()}
    seen = {part: set(found) for part, found in digests.items()}
    return {f"{a}_{b}": sum(d in seen[a] for d in digests[b]) for a, b in PAIRS}


def in_both_folders(pool_members) -> list[dict]:
    """Files of the training folder whose bytes a test-folder file repeats: ``{"files": [training
    file, test file]}``, one per test file, in the test folder's order."""
    (train_digests, train_names, _), (test_digests, test_names, _) = pool_members
    first = {}
    for digest, name in zip(train_digests, train_names):
        first.setdefault(digest, name)
    return [{"files": [first[digest], name]} for digest, name in zip(test_digests, test_names) if digest in first]


def find_duplicates(pools, x: dict[str, np.ndarray]) -> dict:
    """The manifest's ``duplicates`` entry for the pools read and the prepared parts ``x``."""
    pool_members = members(pools)
    groups = across_classes(pools, pool_members)
    entry = {"across_classes": groups[:MAX_LISTED], "across_classes_count": len(groups),
             "across_parts": across_parts(x)}
    if pools.test_files:
        both = in_both_folders(pool_members)
        entry |= {"in_both_folders": both[:MAX_LISTED], "in_both_folders_count": len(both)}
    return entry


def warning(entry: dict) -> str | None:
    """The one warning line for a ``duplicates`` entry, or ``None`` when there are none."""
    found = []
    if entry["across_classes_count"]:
        first = entry["across_classes"][0]
        files = ", ".join(first["files"][:3]) + (", ..." if len(first["files"]) > 3 else "")
        found.append(f"{entry['across_classes_count']} image(s) found under two or more classes "
                     f"(e.g. {files}: classes {', '.join(first['classes'])})")
    if entry.get("in_both_folders_count"):
        files = entry["in_both_folders"][0]["files"]
        found.append(f"{entry['in_both_folders_count']} file(s) of data.test_path also in data.path "
                     f"(e.g. {files[1]} = {files[0]})")
    found += [f"{n} {pair.split('_')[1]} image(s) identical to {pair.split('_')[0]} images"
              for pair, n in entry["across_parts"].items() if n]
    if not found:
        return None
    return f"warning: duplicate images: {'; '.join(found)}; listed under 'duplicates' in the manifest"


def warn_duplicates(entry: dict) -> None:
    line = warning(entry)
    if line:
        print(line, file=sys.stderr)

"""Duplicate images that bias the comparison: the same image under two classes, and the same
image in two parts of the split (a test image the models were trained on).

Two images are duplicates when their pixels are identical as ``prepare`` reads them: decoded
and, for the folder dataset, resized to ``data.image_size`` (across classes), and as the
models see them, after preprocessing (across parts). Pixels rather than file bytes, so that
one picture saved as PNG and as BMP counts, and so that the array datasets (MNIST, CIFAR-10,
digits) are checked too. A lossy re-encoding (a JPEG saved twice) is not identical and is
not found.

``prepare`` records the result in the manifest (``duplicates``) and prints one warning line.
"""
from __future__ import annotations

import hashlib
import sys
from collections import defaultdict

import numpy as np

MAX_LISTED = 100  # groups listed in the manifest; the count covers all
PAIRS = (("train", "val"), ("train", "test"), ("val", "test"))


def _digests(images: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest() for image in images]


def across_classes(pools) -> list[dict]:
    """Groups of identical images with different labels: ``{"files": [...], "classes": [...]}``, in
    the order of their first image. Files are the folder dataset's paths (relative to data.path),
    else ``train #i`` / ``test #i`` (the index in the dataset's training or official test pool)."""
    groups: dict[bytes, list[tuple[str, int]]] = defaultdict(list)
    pool_parts = [("train", pools.x_train, pools.y_train)]
    if pools.x_test is not None:
        pool_parts.append(("test", pools.x_test, pools.y_test))
    for part, images, labels in pool_parts:
        names = pools.files if part == "train" and pools.files else [f"{part} #{i}" for i in range(len(images))]
        for digest, name, label in zip(_digests(images), names, labels):
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
        found.append(f"{entry['across_classes_count']} image(s) identical under different classes "
                     f"(e.g. {' = '.join(first['files'][:2])}: {', '.join(first['classes'])})")
    found += [f"{n} {pair.split('_')[1]} image(s) identical to {pair.split('_')[0]} images"
              for pair, n in entry["across_parts"].items() if n]
    if not found:
        return None
    return f"warning: duplicate images: {'; '.join(found)}; listed under 'duplicates' in the manifest"


def warn_duplicates(entry: dict) -> None:
    line = warning(entry)
    if line:
        print(line, file=sys.stderr)

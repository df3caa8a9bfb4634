"""The stratified, seeded train/validation/test split of a dataset's pools (``prepare``), and the
check that names a class too small for it."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import DataError

if TYPE_CHECKING:
    from pipeline.datasets import Pools


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



def _cap_per_class(y: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices keeping at most ``limit`` random samples of each class (all when None), sorted."""
    if limit is None:
        return np.arange(len(y))
    keep = [rng.permutation(np.flatnonzero(y == c))[:limit] for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


def _check_labels(y: np.ndarray, n_classes: int, what: str) -> None:
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"{what}: label {int(y.max())} outside 0..{n_classes - 1}")


def split_pools(pools: Pools, *, seed: int, val_fraction: float, test_fraction: float,
                limit_per_class: int | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Stratified, seeded split; the official test split (or the folder dataset's ``data.test_path``)
    is kept where the dataset has one, and then ``test_fraction`` is unused."""
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    n_classes = len(pools.class_names)
    _check_labels(pools.y_train, n_classes, "training labels")
    keep = _cap_per_class(pools.y_train, limit_per_class, rng)
    x_pool, y_pool = pools.x_train[keep], pools.y_train[keep]
    if len(np.unique(y_pool)) < 2:
        raise DataError(f"found {len(np.unique(y_pool))} class(es) in the data; need at least 2")
    check_class_sizes(pools, y_pool, val_fraction, test_fraction if pools.x_test is None else None)
    try:
        if pools.x_test is None:
            x_pool, x_test, y_pool, y_test = train_test_split(
                x_pool, y_pool, test_size=test_fraction, stratify=y_pool, random_state=seed)
        else:
            _check_labels(pools.y_test, n_classes, "test labels")
            keep_test = _cap_per_class(pools.y_test, limit_per_class, rng)
            x_test, y_test = pools.x_test[keep_test], pools.y_test[keep_test]
        x_train, x_val, y_train, y_val = train_test_split(
            x_pool, y_pool, test_size=val_fraction, stratify=y_pool, random_state=seed)
    except ValueError as exc:  # too few samples of a class to stratify
        raise DataError(f"cannot make a stratified split: {exc} (add images or lower the fractions)") from None
    return ({"train": x_train, "val": x_val, "test": x_test},
            {"train": y_train, "val": y_val, "test": y_test})

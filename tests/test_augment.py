"""models.augment and models.training.augmented_batches: what the CNNs train on when augmentation is on."""
from __future__ import annotations

import numpy as np
import pytest

from models.augment import augment, batch_rng
from models.errors import InputError, ParameterError


def _images(n: int = 64, size: int = 8, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 256, (n, size, size, channels), dtype=np.uint8)


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The image moved down by dy and right by dx, zeros entering at the border (brute force)."""
    h, w = image.shape[:2]
    out = np.zeros_like(image)
    for r in range(h):
        for c in range(w):
            if 0 <= r - dy < h and 0 <= c - dx < w:
                out[r, c] = image[r - dy, c - dx]
    return out


def test_horizontal_flip_mirrors_about_half_the_images_and_leaves_the_rest():
    images = _images(200)
    out = augment(images, batch_rng(1, 0, 0), horizontal_flip=True)
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert np.all(mirrored ^ kept)
    assert 60 < mirrored.sum() < 140


@pytest.mark.parametrize("channels", [1, 3])
def test_every_shifted_image_is_the_original_moved_within_max_shift(channels):
    images = _images(40, channels=channels)
    out = augment(images, batch_rng(3, 1, 2), max_shift=2)
    shifts = []
    for o, i in zip(out, images):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if np.array_equal(o, _shift(i, dy, dx))]
        assert len(found) == 1
        shifts.append(found[0])
    assert len(set(shifts)) > 5  # drawn per image, not one shift for the batch
    assert {dy for dy, _ in shifts} >= {-2, 2}


def test_max_shift_is_he_et_al_s_random_crop_of_the_zero_padded_image():
    """4 pixels of zero padding on each side, then a random 32x32 crop (He et al. 2016, sec. 4.2)."""
    images = _images(200, size=32, channels=3)
    out = augment(images, batch_rng(7, 0, 0), max_shift=4)
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    offsets = []
    for o, p in zip(out, padded):
        found = [(r, c) for r in range(9) for c in range(9) if np.array_equal(o, p[r:r + 32, c:c + 32])]
        assert len(found) == 1
        offsets.append(found[0])
    rows, cols = zip(*offsets)
    assert set(rows) == set(cols) == set(range(9))  # every crop position of the padded 40x40 is drawn


def test_same_generator_same_batch_and_the_input_is_untouched():
    images = _images()
    before = images.copy()
    a = augment(images, batch_rng(5, 2, 7), horizontal_flip=True, max_shift=3)
    b = augment(images, batch_rng(5, 2, 7), horizontal_flip=True, max_shift=3)
    c = augment(images, batch_rng(5, 3, 7), horizontal_flip=True, max_shift=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(images, before)
    assert a.dtype == images.dtype and a.shape == images.shape


def test_bad_settings_are_named():
    with pytest.raises(InputError, match="max_shift = 8 .* 8x8 .* at most 7"):
        augment(_images(), batch_rng(0, 0, 0), max_shift=8)
    with pytest.raises(ParameterError, match="max_shift .* got -1"):
        augment(_images(), batch_rng(0, 0, 0), max_shift=-1)
    with pytest.raises(ParameterError, match="horizontal_flip .* got 'yes'"):
        augment(_images(), batch_rng(0, 0, 0), horizontal_flip="yes")
    with pytest.raises(InputError, match=r"\(n, H, W, C\)"):
        augment(_images()[..., 0], batch_rng(0, 0, 0), max_shift=1)


def test_batches_visit_every_image_once_per_epoch_in_a_new_seeded_order():
    from models.training import augmented_batches

    images, labels = _images(50), np.arange(50)
    data = augmented_batches(images, labels, batch_size=16, seed=9, horizontal_flip=True)
    assert len(data) == 4

    def epoch(dataset):
        batches = [dataset[i] for i in range(len(dataset))]
        dataset.on_epoch_end()
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])

    x0, y0 = epoch(data)
    x1, y1 = epoch(data)
    assert sorted(y0) == list(range(50)) and sorted(y1) == list(range(50))
    assert not np.array_equal(y0, y1)
    for x, y in ((x0, y0), (x1, y1)):  # each label still travels with its own (possibly mirrored) image
        assert all(np.array_equal(xi, images[yi]) or np.array_equal(xi, images[yi][:, ::-1]) for xi, yi in zip(x, y))
    again = augmented_batches(images, labels, batch_size=16, seed=9, horizontal_flip=True)
    x0b, y0b = epoch(again)
    np.testing.assert_array_equal(y0, y0b)
    np.testing.assert_array_equal(x0, x0b)


def test_batches_need_one_label_per_image():
    from models.training import augmented_batches

    with pytest.raises(InputError, match="got 5 and 4"):
        augmented_batches(_images(5), np.arange(4), batch_size=2, seed=0, max_shift=1)

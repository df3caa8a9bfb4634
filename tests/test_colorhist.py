"""features.extractors.colorhist: joint HSV histograms per grid cell, binned as cv2.calcHist bins
them (the reference), L1-normalised; an intensity histogram on grayscale images; its drawing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from features import drawing, get_extractor, make_extractor
from features.errors import ImageError, ParameterError
from features.extractors import _colorhist_drawing
from features.extractors.colorhist import ColourHistogram


def calc_hist_reference(image: np.ndarray, bins, grid: int) -> np.ndarray:
    """Pixel counts (grid, grid, *bins) of one RGB image: cv2.cvtColor to HSV, cv2.calcHist per cell."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    rows = [int(np.floor(i * image.shape[0] / grid)) for i in range(grid + 1)]
    cols = [int(np.floor(i * image.shape[1] / grid)) for i in range(grid + 1)]
    return np.array([[cv2.calcHist([np.ascontiguousarray(hsv[rows[r]:rows[r + 1], cols[c]:cols[c + 1]])], [0, 1, 2],
                                   None, list(bins), [0, 180, 0, 256, 0, 256])
                      for c in range(grid)] for r in range(grid)])


@pytest.mark.parametrize(("bins", "grid"), [([8, 4, 4], 2), ([7, 3, 5], 3), ([180, 1, 2], 1), ([9, 6, 1], 4)])
def test_matches_cv2_calchist_per_cell(rng, bins, grid):
    images = rng.integers(0, 256, (6, 30, 27, 3), dtype=np.uint8)
    images[0] = (rng.integers(0, 4, (30, 27, 3)) * 85).astype(np.uint8)  # few colours: values on bin edges
    features = ColourHistogram(bins=bins, grid=grid).fit_transform(images)
    assert features.shape == (6, grid * grid * int(np.prod(bins))) and features.dtype == np.float32
    for image, row in zip(images, features):
        counts = calc_hist_reference(image, bins, grid)
        cell_pixels = counts.sum(axis=tuple(range(2, counts.ndim)), keepdims=True)
        np.testing.assert_allclose(row.reshape(counts.shape), counts / cell_pixels, rtol=1e-6, atol=0)


def test_every_cell_sums_to_one(rng):
    features = ColourHistogram(grid=3).fit_transform(rng.integers(0, 256, (4, 28, 28, 3), dtype=np.uint8))
    np.testing.assert_allclose(features.reshape(4, 9, -1).sum(axis=2), 1.0, rtol=1e-6)


def test_pure_colours_fall_in_their_hue_bins():
    image = np.zeros((1, 2, 3, 3), np.uint8)
    image[0, :, 0] = (255, 0, 0)  # hue 0
    image[0, :, 1] = (0, 255, 0)  # 120 degrees: OpenCV's 60 of 180, bin 60 * 6 // 180 = 2
    image[0, :, 2] = (0, 0, 255)  # 240 degrees: 120 of 180, bin 4
    hist = ColourHistogram(bins=[6, 2, 2], grid=1).fit_transform(image).reshape(6, 2, 2)
    expected = np.zeros((6, 2, 2))
    expected[[0, 2, 4], 1, 1] = 1 / 3  # saturated and bright
    np.testing.assert_allclose(hist, expected, rtol=1e-6)


def test_grayscale_is_an_intensity_histogram(rng):
    gray = rng.integers(0, 256, (3, 16, 16), dtype=np.uint8)
    extractor = ColourHistogram(bins=[8, 4, 4], grid=2)
    hist = extractor.fit_transform(gray).reshape(3, 2, 2, 8, 4, 4)
    assert not hist[..., 1:, :, :].any() and not hist[..., :, 1:, :].any()  # hue and saturation 0
    cells = gray.reshape(3, 2, 8, 2, 8).transpose(0, 1, 3, 2, 4).reshape(3, 2, 2, 64)
    levels = np.stack([np.bincount(cell // 64, minlength=4) / 64 for cell in cells.reshape(-1, 64)])
    np.testing.assert_allclose(hist[..., 0, 0, :].reshape(-1, 4), levels, rtol=1e-6)
    np.testing.assert_array_equal(extractor.fit_transform(np.repeat(gray[..., None], 3, axis=3)),
                                  extractor.fit_transform(gray))


@pytest.mark.parametrize(("params", "message"), [
    ({"bins": [8, 4]}, r"bins=\[8, 4\] is invalid; expected three integers"),
    ({"bins": [181, 4, 4]}, r"bins=\[181, 4, 4\] is invalid"),
    ({"bins": [8, 0, 4]}, r"bins=\[8, 0, 4\] is invalid"),
    ({"bins": [8, 4, True]}, r"is invalid"),
    ({"grid": 0}, r"grid=0 is invalid; expected an integer >= 1"),
])
def test_invalid_parameters(params, message):
    with pytest.raises(ParameterError, match=message):
        make_extractor("colorhist", **params)


def test_image_smaller_than_the_grid():
    with pytest.raises(ImageError, match=r"images are 3x8, smaller than the 4x4 minimum for grid=4"):
        ColourHistogram(grid=4).fit(np.zeros((1, 3, 8, 3), np.uint8))


def test_drawing_shows_each_cells_hue_histogram():
    image = np.zeros((16, 16, 3), np.uint8)
    image[:8, :8] = (255, 0, 0)
    image[8:, 8:] = (0, 0, 255)
    figures = get_extractor("colorhist").draw(make_extractor("colorhist", bins=[6, 2, 2], grid=2), image)
    fig = figures["colorhist"]
    bars = [[bar.get_height() for bar in ax.patches] for ax in fig.axes[1:]]
    assert bars == [[1, 0, 0, 0, 0, 0], [0] * 6, [0] * 6, [0, 0, 0, 0, 1, 0]]  # red top left, blue bottom right
    assert [ax.get_title() for ax in fig.axes[1:3]] == ["cell (0, 0): 0% grey", "cell (0, 1): 100% grey"]  # black
    np.testing.assert_allclose(_colorhist_drawing.hue_colours(6)[0], [1, 0.5, 0], atol=0.02)  # 15 degrees: orange-red
    picture = drawing.figure_rgb(fig)
    assert picture.shape[2] == 3 and (picture != picture[0, 0]).any()


def test_drawing_of_a_gray_image_shows_its_intensity_histograms():
    image = np.zeros((16, 16), np.uint8)
    image[:, 8:] = 255
    fig = get_extractor("colorhist").draw(make_extractor("colorhist", bins=[6, 2, 4], grid=2), image)["colorhist"]
    bars = [[bar.get_height() for bar in ax.patches] for ax in fig.axes[1:]]
    assert bars == [[1, 0, 0, 0], [0, 0, 0, 1]] * 2  # black left, white right


def test_params_yaml_section_builds_it_and_bad_values_name_it():
    from helpers import REPO_ROOT
    from pipeline.config import load_config
    from pipeline.errors import ConfigError
    from pipeline.features import build_extractor

    cfg = load_config(REPO_ROOT / "params.yaml")
    assert "colorhist" not in cfg.features.names  # the default run is unchanged
    extractor = build_extractor(cfg, "colorhist")
    assert (list(extractor.bins), extractor.grid) == ([8, 4, 4], 2)
    bad = load_config(REPO_ROOT / "params.yaml", {"features.colorhist.bins": [8, 4]})
    with pytest.raises(ConfigError, match=r"params.yaml: features.colorhist: ColourHistogram: bins=\[8, 4\] is invalid"):
        build_extractor(bad, "colorhist")
    assert build_extractor(load_config(REPO_ROOT / "params.yaml", {"features.sift.colour": "opponent"}),
                           "sift").keeps_colour

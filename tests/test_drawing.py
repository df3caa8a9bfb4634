"""The extractors' drawing hooks (``features.Extractor.draw`` and the drawing modules beside
their extractors), the lecture's worked examples and models.drawing on small generated
images: sizes, content, gray and RGB."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from features import drawing, drawing_names, get_extractor, lecture, make_extractor
from features.errors import ImageError
from features.extractors import _hog_drawing, _sift_drawing, _sobel_drawing
from features.extractors.hog import HOGFeatures, cell_histograms
from features.extractors.sift import SIFTFeatures, opponent_channels
from features.extractors.sobel import SobelFeatures

SIZE = 32


def step_image() -> np.ndarray:
    """Dark left half, bright right half: one vertical edge at column 16."""
    image = np.zeros((SIZE, SIZE), dtype=np.uint8)
    image[:, SIZE // 2:] = 200
    return image


def blob_image() -> np.ndarray:
    image = np.zeros((SIZE, SIZE), dtype=np.uint8)
    cv2.circle(image, (16, 16), 8, 255, -1)
    return image


def rgb(image: np.ndarray) -> np.ndarray:
    out = np.zeros((*image.shape, 3), dtype=np.uint8)
    out[..., 0] = image  # red only: the RGB -> gray conversion must be the extractors' (BT.601 luma)
    return out


def not_blank(array: np.ndarray) -> bool:
    return bool((array != array.reshape(-1, array.shape[-1])[0]).any())


@pytest.mark.parametrize("make", [step_image, lambda: rgb(step_image())], ids=["gray", "rgb"])
def test_every_figure_renders_a_non_blank_picture(make):
    image = make()
    figures = {
        **get_extractor("sobel").draw(SobelFeatures(ksize=3), image),
        **get_extractor("hog").draw(HOGFeatures(9, (4, 4), (2, 2)), image),
        **get_extractor("sift").draw(SIFTFeatures(step=4, size=5, n_words=8, spatial_pyramid=True), image,
                                          np.linspace(0, 1, 5 * 8)),
        **{name: lecture.worked_example(name) for name in lecture.WORKED_EXAMPLES},
    }
    figures |= get_extractor("colorhist").draw(make_extractor("colorhist"), image)
    figures |= {"opponent": get_extractor("sift").draw(SIFTFeatures(colour="opponent"), image)["opponent"]}
    assert {"sobel", "hog", "sift", "bovw", "colorhist", "opponent"} <= set(figures)
    for name, fig in figures.items():
        picture = drawing.figure_rgb(fig)
        width, height = fig.get_size_inches() * fig.dpi
        assert picture.shape == (round(height), round(width), 3), name
        assert picture.dtype == np.uint8 and not_blank(picture), name


def test_every_registered_drawing_gives_figures_of_an_unfitted_extractor():
    for name in drawing_names():
        figures = get_extractor(name).draw(make_extractor(name), blob_image())
        assert figures and all(not_blank(drawing.figure_rgb(fig)) for fig in figures.values()), name


def test_sobel_gradients_are_the_extractors_and_find_the_edge():
    gx, gy, magnitude = _sobel_drawing.sobel_gradients(step_image(), 3)
    assert gx.shape == gy.shape == magnitude.shape == (SIZE, SIZE)
    assert np.abs(gy).max() == 0  # no horizontal edge
    assert set(np.flatnonzero(gx.max(axis=0))) == {15, 16}  # the columns beside the step
    np.testing.assert_allclose(magnitude, np.hypot(gx, gy), rtol=1e-5)
    # red-only RGB: every gradient is the red channel's (the strongest), as in the extractor
    for mine, reds in zip(_sobel_drawing.sobel_gradients(rgb(step_image()), 3), (gx, gy, magnitude)):
        np.testing.assert_array_equal(mine, reds)


def test_colour_sobel_drawing_maps_the_strongest_channel():
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[:, SIZE // 2:, 0] = 100  # red steps up at column 16,
    image[SIZE // 2:, :, 2] = 200  # blue steps up at row 16
    gx, gy, magnitude = _sobel_drawing.sobel_gradients(image, 3)
    assert gx[4, 15] > 0 and gy[4, 15] == 0 and gy[15, 4] > 0 and gx[15, 4] == 0
    channels = _sobel_drawing.dominant_channel_map(image, 3)
    assert channels[4, 15].tolist()[1:] == [0, 0] and channels[4, 15, 0] > 0  # red edge: red
    assert channels[15, 4].tolist() == [0, 0, 255]  # the strongest gradient, blue's
    assert not channels[4, 4].any()  # no gradient: black
    fig = get_extractor("sobel").draw(SobelFeatures(), image)["sobel"]
    assert "strongest channel" in fig.axes[4].get_title()


def test_colour_hog_cells_are_the_extractors():
    image = rgb(blob_image())
    image[..., 2] = step_image()
    cells = _hog_drawing.hog_cells(image, 9, (4, 4))
    np.testing.assert_array_equal(cells, cell_histograms(image[None], 9, (4, 4), False)[0])
    assert not np.array_equal(cells, _hog_drawing.hog_cells(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 9, (4, 4)))


def test_opponent_sift_draws_its_three_channels():
    image = rgb(blob_image())
    figures = get_extractor("sift").draw(SIFTFeatures(colour="opponent", n_words=8), image)
    assert set(figures) == {"sift", "opponent"}
    panels = figures["opponent"].axes[1:]
    shown = [ax.images[0].get_array() for ax in panels]
    np.testing.assert_array_equal(np.stack(shown), opponent_channels(image[None])[:, 0])
    assert "sift" in get_extractor("sift").draw(SIFTFeatures(n_words=8), image) and "opponent" not in \
        get_extractor("sift").draw(SIFTFeatures(n_words=8), image)


def test_hog_cells_are_the_extractors_histograms():
    cells = _hog_drawing.hog_cells(step_image(), 9, (4, 4))
    assert cells.shape == (8, 8, 9)
    assert cells[:, 3:5].sum() > 0 and cells[:, :3].sum() == 0 and cells[:, 5:].sum() == 0  # only at the edge
    assert set(np.argmax(cells[:, 3:5], axis=-1).ravel()) == {0}  # horizontal gradient: the 0-20 degree bin
    # one L2-Hys block of the drawn cells reproduces the extractor's first block
    block = cells[0:2, 3:5].transpose(0, 1, 2).reshape(-1)
    block = block / np.sqrt((block**2).sum() + 1e-10)
    block = np.minimum(block, 0.2)
    block = block / np.sqrt((block**2).sum() + 1e-10)
    features = HOGFeatures(9, (4, 4), (2, 2)).fit_transform(step_image()[None])[0].reshape(7, 7, 2, 2, 9)
    np.testing.assert_allclose(features[0, 3].reshape(-1), block, atol=1e-6)


def test_hog_glyphs_are_drawn_where_the_gradients_are():
    glyphs = _hog_drawing.hog_glyphs(step_image(), 9, (4, 4), (2, 2), scale=8)
    assert glyphs.shape == (SIZE * 8, SIZE * 8, 3)
    bright = glyphs[..., 1] > 150  # glyph lines are grey levels up to 255; the background is darkened
    cols = np.flatnonzero(bright[8 * 8 + 4:].any(axis=0))  # below the first block's yellow outline
    assert cols.min() >= 3 * 32 and cols.max() < 5 * 32  # inside cells 3-4, the edge's cells
    blank = _hog_drawing.hog_glyphs(np.zeros((SIZE, SIZE), np.uint8), scale=8)
    assert blank[8 * 8 + 4:, 8 * 8 + 4:].max() <= 70  # no gradient: only the grey cell grid, no glyph


def test_dense_keypoints_are_the_extractors_grid_and_are_drawn():
    keypoints = _sift_drawing.sift_dense_keypoints(blob_image(), step=4, size=5)
    assert len(keypoints) == ((SIZE - 5) // 4 + 1) ** 2
    descriptors = SIFTFeatures(step=4, size=5)._descriptors(blob_image()[None])
    assert {tuple(xy) for xy in descriptors.xy} <= {kp.pt for kp in keypoints}
    canvas = _sift_drawing.draw_keypoints(rgb(blob_image()), keypoints, scale=4)
    assert canvas.shape == (SIZE * 4, SIZE * 4, 3)
    green = canvas[..., 1] > 0  # the red-only image has no green: every green pixel is drawn
    assert green.sum() > 100  # the circles
    assert _sift_drawing.sift_dense_keypoints(np.zeros((4, 4), np.uint8), 4, 5) == []  # smaller than one patch


def test_the_sift_drawing_uses_its_fitted_codebook_or_the_stored_vector():
    draw = get_extractor("sift").draw
    unfitted = SIFTFeatures(step=4, size=5, n_words=8, spatial_pyramid=False)
    assert set(draw(unfitted, blob_image())) == {"sift"}  # no codebook, no stored vector: no bag of words
    assert set(draw(unfitted, blob_image(), np.ones(8))) == {"sift", "bovw"}
    fitted = unfitted.fit(np.stack([blob_image(), step_image(), 255 - blob_image()]))
    (drawn,) = draw(fitted, blob_image())["bovw"].axes[0].patches  # one step patch: a bar per word
    np.testing.assert_allclose(drawn.get_data().values, fitted.transform(blob_image()[None])[0], rtol=1e-6)


def test_bag_of_words_figure_checks_the_vector_length():
    with pytest.raises(ImageError, match="40 values"):
        _sift_drawing.bovw_figure(np.ones(41), 8, spatial_pyramid=True)


def test_worked_examples_show_the_lecture_numbers():
    fig = lecture.worked_example("stride")
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"-30", "30", "20", "-20"} <= texts  # the 4x4 output of the 7x7 edge image, P=1, S=2
    assert "= 4" in fig._suptitle.get_text()
    pool = {t.get_text() for t in lecture.worked_example("max_pool").axes[1].texts}
    assert pool == {"20", "30", "112", "37"}
    with pytest.raises(ValueError, match="allowed: convolution"):
        lecture.worked_example("dilation")


def test_bad_images_are_refused():
    with pytest.raises(ImageError, match="shape"):
        _sobel_drawing.sobel_figure(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ImageError, match="uint8"):
        _hog_drawing.hog_figure(np.zeros((8, 8), np.float32))


def test_cnn_filters_and_feature_maps_of_lenet5():
    from models import architectures
    from models import drawing as cnn_drawing

    model = architectures.get("lenet5").build((SIZE, SIZE, 1), 3)
    assert cnn_drawing.conv_layer_names(model) == ["conv1", "conv2"]
    assert cnn_drawing.conv_filters(model, "conv1").shape == (5, 5, 1, 6)
    assert cnn_drawing.conv_filters(model, "conv2").shape == (5, 5, 6, 16)
    for layer in ("conv1", "conv2"):
        picture = drawing.figure_rgb(cnn_drawing.filters_figure(cnn_drawing.conv_filters(model, layer), layer))
        assert not_blank(picture)
    maps = cnn_drawing.feature_maps(model, blob_image()[..., None])
    assert [(name, m.shape) for name, m in maps] == [("conv1", (28, 28, 6)), ("pool1", (14, 14, 6)),
                                                     ("conv2", (10, 10, 16)), ("pool2", (5, 5, 16))]
    picture = drawing.figure_rgb(cnn_drawing.feature_maps_figure(maps, blob_image()[..., None], "lenet5"))
    assert not_blank(picture)
    with pytest.raises(ValueError, match="not a 2-D convolution"):
        cnn_drawing.conv_filters(model, "fc1")
    with pytest.raises(ValueError, match="takes images of shape"):
        cnn_drawing.feature_maps(model, np.zeros((28, 28, 1), np.uint8))


def test_feature_maps_are_drawn_as_one_mosaic_per_layer_each_map_on_its_own_scale():
    from models import drawing as cnn_drawing

    tiles = [np.full((2, 2), v, np.float32) for v in (1.0, 2.0, 3.0)]
    grid = cnn_drawing.mosaic(tiles, columns=2)
    assert grid.shape == (5, 5)
    np.testing.assert_array_equal(grid[3:, :2], 3.0)  # third tile: second row, first column
    assert np.isnan(grid[2]).all() and np.isnan(grid[3:, 2:]).all()  # the gap row, the missing tile

    maps = [("conv1", np.stack([np.arange(16.0).reshape(4, 4), np.full((4, 4), 7.0)], axis=-1))]
    fig = cnn_drawing.feature_maps_figure(maps, blob_image()[..., None], "net")
    (drawn,) = fig.axes[3].images  # row 1: the label, then the layer's maps
    shown = drawn.get_array().filled(np.nan)
    zoom = 4  # 4x4 maps are enlarged to 16x16
    np.testing.assert_allclose(shown[:16:zoom, :16:zoom], np.arange(16.0).reshape(4, 4) / 15)
    np.testing.assert_array_equal(shown[:16, 18:], 0.0)  # a constant map is flat, not stretched noise

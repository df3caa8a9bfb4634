"""features/extractors/stack.py: several extractors' features side by side."""
from __future__ import annotations

import numpy as np
import pytest

from features import extractor_names, make_extractor
from features.errors import ImageError, ParameterError

HOG = {"pixels_per_cell": [4, 4], "cells_per_block": [2, 2], "transform_sqrt": True}
ALL_BUT_STACK = [name for name in extractor_names() if name != "stack"]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (30, 16, 16), dtype=np.uint8)


def test_stack_is_its_parts_concatenated_in_order(images):
    stacked = make_extractor("stack", parts=["sobel", "hog", "raw"], sections={"hog": HOG},
                             chunk_size=7).fit(images[:20]).transform(images)
    parts = [make_extractor("sobel").fit(images[:20]).transform(images),
             make_extractor("hog", **HOG).fit(images[:20]).transform(images),
             make_extractor("raw").fit(images[:20]).transform(images)]
    np.testing.assert_array_equal(stacked, np.hstack(parts))
    assert stacked.dtype == np.float32


def test_on_colour_each_part_gets_what_it_would_get_alone():
    # hog, raw and colorhist keep colour, grayscale sift gets the luma: the stack of an RGB batch
    # is each part's own features of it, balance scales included.
    rgb = np.random.default_rng(2).integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
    parts = ["hog", "sift", "raw", "colorhist"]
    sections = {"hog": HOG, "sift": {"n_words": 3, "size": 8}}
    stack = make_extractor("stack", parts=parts, sections=sections, balance=True, chunk_size=5).fit(rgb[:16])
    alone = [make_extractor(name, **sections.get(name, {})).fit(rgb[:16]) for name in parts]
    np.testing.assert_allclose(stack.transform(rgb), np.hstack([p.transform(rgb) / s for p, s in
                                                                 zip(alone, stack.part_scales_)]), rtol=1e-6)
    assert stack.image_shape_ == (16, 16, 3)
    assert [p.image_shape_ for p in stack.parts_] == [p.image_shape_ for p in alone] == [
        (16, 16, 3), (16, 16), (16, 16, 3), (16, 16, 3)]


def test_a_fitted_part_learns_from_the_training_images_with_the_stack_seed(images):
    stack = make_extractor("stack", parts=["sift", "raw"], overrides={"sift": {"n_words": 3}},
                           random_state=5).fit(images)
    sift = make_extractor("sift", n_words=3, random_state=5).fit(images)
    np.testing.assert_array_equal(stack.transform(images)[:, :sift.transform(images[:1]).shape[1]],
                                  sift.transform(images))
    other = make_extractor("stack", parts=["sift", "raw"], overrides={"sift": {"n_words": 3}},
                           random_state=6).fit(images)
    assert not np.array_equal(other.transform(images), stack.transform(images))


@pytest.mark.parametrize(("params", "message"), [
    ({"parts": []}, r"parts=\[\] is invalid"),
    ({"parts": "hog"}, r"parts='hog' is invalid"),
    ({"parts": ["hog", "surf"]}, rf"parts item 'surf' is invalid; allowed: {', '.join(ALL_BUT_STACK)}$"),
    ({"parts": ["hog", "stack"]}, r"parts item 'stack' is invalid"),
    ({"parts": ["hog", "hog"]}, r"repeats an extractor"),
    ({"parts": ["hog"], "overrides": {"raw": {}}}, r"overrides names 'raw', which is not in parts"),
    ({"parts": ["hog"], "overrides": {"hog": {"orientation": 9}}}, r"HOGFeatures: unknown parameter 'orientation'"),
    ({"parts": ["hog"], "sections": {"hog": {"orientation": 9}}}, r"HOGFeatures: unknown parameter 'orientation'"),
    ({"overrides": [1]}, r"overrides=\[1\] is invalid"),
    ({"sections": {"hog": 9}}, r"sections=\{'hog': 9\} is invalid"),
])
def test_bad_parts_are_named(params, message):
    with pytest.raises(ParameterError, match=message):
        make_extractor("stack", **params)


def test_too_small_images_name_the_part_that_needs_more(images):
    stack = make_extractor("stack", parts=["raw", "hog"], overrides={"hog": {"pixels_per_cell": [8, 8],
                                                                             "cells_per_block": [3, 3]}})
    with pytest.raises(ImageError, match="24x24 minimum"):
        stack.fit(images)


def test_a_part_is_its_own_section_with_the_overrides_replacing_keys():
    stack = make_extractor("stack", parts=["hog", "raw"], sections={"hog": HOG | {"orientations": 12}, "sift": {}},
                           overrides={"hog": {"transform_sqrt": False}})
    hog, raw = stack._build_parts()
    assert hog.get_params() == make_extractor("hog", **HOG | {"orientations": 12, "transform_sqrt": False}).get_params()
    assert raw.get_params() == make_extractor("raw").get_params()  # no section: the extractor's defaults


# today's default stack, before its parts took their own sections (params.yaml's former part_params)
DEFAULT_PARTS = {
    "hog": {"orientations": 9, "pixels_per_cell": [4, 4], "cells_per_block": [2, 2], "block_norm": "L2-Hys",
            "transform_sqrt": True},
    "sobel": {"ksize": 3, "cell_size": 4, "orientations": 8, "magnitude_map": True},
    "raw": {"scale": True},
}


def test_the_stage_builds_the_parts_from_their_sections_and_the_overrides():
    from helpers import REPO_ROOT
    from pipeline.config import load_config
    from pipeline.extractors import build_extractor

    cfg = load_config(REPO_ROOT / "params.yaml")
    stack = build_extractor(cfg, "stack")
    assert stack.parts == ["hog", "sobel", "raw"] and stack.random_state == cfg.seed
    for name, part in zip(stack.parts, stack._build_parts()):
        assert part.get_params() == make_extractor(name, **DEFAULT_PARTS[name]).get_params(), name

    changed = load_config(REPO_ROOT / "params.yaml", {"features.hog.orientations": 12,
                                                       "features.stack.parts": ["hog", "sift"]})
    hog, sift = build_extractor(changed, "stack")._build_parts()
    assert (hog.orientations, hog.transform_sqrt) == (12, True)  # features.hog, then the stack's override
    assert (sift.n_words, sift.random_state) == (changed.features.sift["n_words"], changed.seed)


def test_balance_divides_each_part_by_its_training_rms_deviation(images):
    train = images[:20]
    stack = make_extractor("stack", parts=["hog", "raw"], sections={"hog": HOG}, balance=True,
                           chunk_size=6).fit(train)
    parts = [make_extractor("hog", **HOG).fit(train), make_extractor("raw").fit(train)]
    expected_scales = [np.sqrt(p.transform(train).astype(np.float64).var(axis=0).mean()) for p in parts]
    np.testing.assert_allclose(stack.part_scales_, expected_scales, rtol=1e-6)
    balanced = stack.transform(images)
    np.testing.assert_allclose(balanced, np.hstack([p.transform(images) / s for p, s in zip(parts, expected_scales)]),
                               rtol=1e-5)
    # on the training images every part now has unit mean variance per dimension
    width = parts[0].transform(train[:1]).shape[1]
    on_train = stack.transform(train).astype(np.float64)
    for block in (on_train[:, :width], on_train[:, width:]):
        assert block.var(axis=0).mean() == pytest.approx(1.0, rel=1e-4)


def test_a_constant_part_is_left_unscaled_and_balance_off_changes_nothing(images):
    blank = np.zeros_like(images[:10])
    stack = make_extractor("stack", parts=["raw"], balance=True).fit(blank)
    assert stack.part_scales_.tolist() == [1.0]
    plain = make_extractor("stack", parts=["hog", "raw"], sections={"hog": HOG}).fit(images)
    np.testing.assert_array_equal(plain.transform(images), np.hstack([
        make_extractor("hog", **HOG).fit(images).transform(images), make_extractor("raw").fit(images).transform(images)]))


def test_balance_must_be_a_bool():
    with pytest.raises(ParameterError, match="balance"):
        make_extractor("stack", balance="yes")

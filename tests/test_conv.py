"""features.conv against the lecture's worked examples, scipy and OpenCV."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.signal import correlate2d

from features.conv import conv_output_size, convolve2d, pool2d
from features.errors import ImageError, ParameterError

VERTICAL_EDGE = np.array([[1, 0, -1]] * 3)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def test_sharpen_kernel_on_top_left_window():
    image = np.array(
        [
            [105, 102, 100, 97, 96],
            [103, 99, 103, 101, 102],
            [101, 98, 104, 102, 100],
            [99, 101, 106, 104, 99],
            [104, 104, 104, 100, 98],
        ]
    )
    sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    out = convolve2d(image, sharpen)
    assert out.shape == (3, 3)
    assert out[0, 0] == 89  # 5*99 - 102 - 103 - 103 - 98


def test_sobel_and_average_on_step_edge():
    image = np.array([[100, 100, 200, 200]] * 4)
    np.testing.assert_array_equal(convolve2d(image, SOBEL_X), np.full((2, 2), 400.0))
    average = convolve2d(image, np.full((3, 3), 1 / 9))
    np.testing.assert_allclose(average, [[400 / 3, 500 / 3]] * 2)  # the lecture's 133.3 and 166.7


def test_vertical_edge_detector():
    image = np.array([[10, 10, 10, 0, 0, 0]] * 6)
    out = convolve2d(image, VERTICAL_EDGE)
    np.testing.assert_array_equal(out, [[0, 30, 30, 0]] * 4)
    assert out.dtype == np.float64


def test_padded_example():
    image = np.array(
        [
            [3, 3, 4, 4, 7, 0],
            [9, 7, 6, 5, 8, 2],
            [6, 5, 5, 6, 9, 2],
            [7, 1, 3, 2, 7, 8],
            [0, 3, 7, 1, 8, 3],
            [4, 0, 4, 3, 2, 2],
        ]
    )
    out = convolve2d(image, VERTICAL_EDGE, padding=1)
    assert out.shape == (6, 6)
    # The lecture's printed table is partly garbled; these entries are legible and right.
    assert (out[0, 0], out[0, 2], out[1, 1], out[1, 2]) == (-10, 1, 3, 0)
    np.testing.assert_array_equal(out, correlate2d(np.pad(image, 1), VERTICAL_EDGE, mode="valid"))


def test_max_pool():
    x = np.array([[12, 20, 30, 0], [8, 12, 2, 0], [34, 70, 37, 4], [112, 100, 25, 12]])
    np.testing.assert_array_equal(pool2d(x, 2, 2, "max"), [[20, 30], [112, 37]])
    np.testing.assert_array_equal(pool2d(x, 2, 2, "avg"), [[13, 8], [79, 19.5]])


@pytest.mark.parametrize(
    ("n", "f", "p", "s", "expected"),
    [
        (227, 11, 0, 4, 55),  # AlexNet conv1
        (7, 3, 1, 2, 4),
        (7, 5, 0, 1, 3),
        (32, 5, 0, 1, 28),  # LeNet-5 C1
        (14, 5, 0, 1, 10),  # LeNet-5 C3
        # The lecture's stride slide draws the 7x7 input already padded to 9x9 and writes
        # "W_I = 9 ... (9-3+2)/2+1 = 4", counting the padding twice. By the formula
        # (9-3+2)/2+1 = 5; its 4x4 output is right for 7x7 with P=1 (above) or 9x9 with P=0.
        (9, 3, 1, 2, 5),
        (9, 3, 0, 2, 4),
    ],
)
def test_conv_output_size(n, f, p, s, expected):
    assert conv_output_size(n, f, p, s) == expected


def test_conv_output_size_errors():
    with pytest.raises(ParameterError, match=r"\(8 - 3 \+ 2\*0\)/2 \+ 1 = 3.5 is not an integer"):
        conv_output_size(8, 3, 0, 2)
    with pytest.raises(ParameterError, match=r"F=7 is larger than the padded input W_I \+ 2P = 4 \+ 2\*1 = 6"):
        conv_output_size(4, 7, 1, 1)
    with pytest.raises(ParameterError, match=r"S=0"):
        conv_output_size(5, 3, 0, 0)


@pytest.mark.parametrize(
    ("n", "f", "p", "s", "expected"),
    [
        (8, 3, 0, 2, 3),  # floor(5 / 2) + 1: the last column is never reached
        (224, 11, 0, 4, 54),  # AlexNet conv1 on a 224x224 input, as Keras builds it ("valid")
        (13, 3, 0, 2, 6),  # overlapping 3x3/2 max pooling of 13x13
        (5, 2, 0, 2, 2),  # 2x2 pooling of an odd size drops the last row
    ],
)
def test_conv_output_size_floor(n, f, p, s, expected):
    assert conv_output_size(n, f, p, s, exact=False) == expected


def test_conv_output_size_floor_counts_the_window_positions():
    for n in range(1, 12):
        for p in range(3):
            for f in range(1, n + 2 * p + 1):
                for s in range(1, 5):
                    positions = len(range(0, n + 2 * p - f + 1, s))  # top-left corners that fit
                    assert conv_output_size(n, f, p, s, exact=False) == positions
                    if (n + 2 * p - f) % s == 0:
                        assert conv_output_size(n, f, p, s) == positions


def test_conv_output_size_floor_still_rejects_a_filter_larger_than_the_input():
    with pytest.raises(ParameterError, match=r"F=7 is larger than the padded input W_I \+ 2P = 4 \+ 2\*1 = 6"):
        conv_output_size(4, 7, 1, 1, exact=False)


def test_convolve2d_errors():
    with pytest.raises(ParameterError, match="not an integer"):
        convolve2d(np.zeros((8, 8)), np.ones((3, 3)), stride=2)
    with pytest.raises(ParameterError, match="larger than the padded input"):
        convolve2d(np.zeros((2, 2)), np.ones((3, 3)))
    with pytest.raises(ParameterError, match="padding=-1"):
        convolve2d(np.zeros((5, 5)), np.ones((3, 3)), padding=-1)
    with pytest.raises(ImageError, match=r"kernel must be a non-empty 2-D array, got shape \(3,\)"):
        convolve2d(np.zeros((5, 5)), np.ones(3))
    with pytest.raises(ParameterError, match="mode='median'"):
        pool2d(np.zeros((4, 4)), mode="median")


@pytest.mark.parametrize(
    ("n", "k", "p", "s"), [(17, 3, 0, 1), (17, 3, 1, 1), (17, 5, 2, 1), (17, 3, 1, 2), (16, 4, 0, 3), (17, 5, 3, 2)]
)
def test_convolve2d_matches_scipy(rng, n, k, p, s):
    image = rng.normal(size=(n, n))
    kernel = rng.normal(size=(k, k))
    expected = correlate2d(np.pad(image, p), kernel, mode="valid")[::s, ::s]
    np.testing.assert_allclose(convolve2d(image, kernel, padding=p, stride=s), expected, atol=1e-12)


@pytest.mark.parametrize("s", [1, 2])
def test_convolve2d_matches_cv2_filter2d(rng, s):
    image = rng.normal(size=(15, 15))
    kernel = rng.normal(size=(3, 3))
    # filter2D's anchor is the kernel centre and BORDER_CONSTANT pads zeros: "same" = P=1.
    expected = cv2.filter2D(image, cv2.CV_64F, kernel, borderType=cv2.BORDER_CONSTANT)[::s, ::s]
    np.testing.assert_allclose(convolve2d(image, kernel, padding=1, stride=s), expected, atol=1e-10)


def test_convolve2d_non_square(rng):
    image = rng.normal(size=(9, 12))
    kernel = rng.normal(size=(2, 5))
    np.testing.assert_allclose(convolve2d(image, kernel), correlate2d(image, kernel, mode="valid"), atol=1e-12)

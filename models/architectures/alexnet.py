"""AlexNet (Krizhevsky et al., 2012), single-GPU form, in the lecture's or the paper's geometry.

``variant="lecture"`` is the lecture's table, no padding: conv1 96@11x11/4 -> 55, max-pool
3/2 -> 27, conv2 256@5x5 -> 23, pool -> 11, conv3 384@3x3 -> 9, conv4 384@3x3 -> 7, conv5
256@3x3 -> 5, pool -> 2, flatten 1,024 -> FC 4,096 -> FC 4,096 -> FC ``num_classes``:
28,823,912 parameters for 1000 classes.

``variant="original"`` pads as the paper: conv1 P2 -> 55, pool -> 27, conv2 P2 -> 27, pool
-> 13, conv3..5 P1 -> 13, pool -> 6, flatten 9,216 -> 4,096 -> 4,096 -> classes: 62,378,344
parameters for 1000 classes. The paper's two-GPU grouping of conv2, conv4 and conv5
(60,965,224 parameters) and its local response normalisation are left out.

Both use ReLU and dropout after fc1 and fc2, as the paper (no parameters).

Reference:
    A. Krizhevsky, I. Sutskever, G. E. Hinton. ImageNet classification with deep
    convolutional neural networks. NIPS 25, 2012.
"""
from __future__ import annotations

from numbers import Real
from typing import Any, Mapping, Sequence

from models.cnn import (
    FC,
    Architecture,
    Conv,
    Dropout,
    Flatten,
    Input,
    Layer,
    Pool,
    Resize,
    ToRGB,
    check_choice,
    check_input_shape,
    check_num_classes,
    is_int,
)
from models.errors import ParameterError

VARIANTS = ("lecture", "original")
# Default internal image size: 227 makes the lecture's unpadded conv1 exact ((227-11)/4+1 = 55);
# the paper states 224, which with padding 2 gives floor((224-11+4)/4)+1 = 55.
IMAGE_SIZE = {"lecture": 227, "original": 224}
# Padding P of conv1..conv5: the lecture's table pads nothing; the paper's layer sizes
# (55, 27, 13, 13, 13) need P = 2, 2, 1, 1, 1.
PADDING = {"lecture": (0, 0, 0, 0, 0), "original": (2, 2, 1, 1, 1)}


def spec(
    input_shape: Sequence[int] | None = None,
    num_classes: int = 1000,
    variant: str = "lecture",
    image_size: int | None = None,
    dropout: float = 0.5,
) -> tuple[Layer, ...]:
    """AlexNet's layers for data of ``input_shape`` and ``num_classes`` classes.

    Args:
        input_shape: the data's (height, width, channels), channels 1 or 3; default
            ``(image_size, image_size, 3)``. Other sizes are resized to ``image_size`` and
            one channel is replicated to three inside the model, without parameters.
        num_classes: units of the softmax output layer ``fc3``.
        variant: ``"lecture"`` or ``"original"``.
        image_size: side of the square image conv1 sees; default 227 ("lecture") or 224
            ("original"); at least :func:`min_image_size` (195 or 63).
        dropout: dropout rate in [0, 1).

    Raises:
        ParameterError: an argument outside the allowed values, or image_size too small.
    """
    check_choice("variant", variant, VARIANTS)
    size = IMAGE_SIZE[variant] if image_size is None else image_size
    minimum = min_image_size(variant)
    if not is_int(size) or size < minimum:
        raise ParameterError(
            f"alexnet variant {variant!r} needs image_size >= {minimum} (smallest size for "
            f"which the last 3x3/2 max-pool still yields 1x1); got {size!r}"
        )
    height, width, channels = check_input_shape((size, size, 3) if input_shape is None else input_shape)
    if channels not in (1, 3):
        raise ParameterError(f"alexnet needs 1 or 3 input channels; got input_shape {tuple(input_shape)}")
    check_num_classes(num_classes)
    if not (isinstance(dropout, Real) and not isinstance(dropout, bool) and 0 <= dropout < 1):
        raise ParameterError(f"dropout must be a number in [0, 1); got {dropout!r}")
    adapt: tuple[Layer, ...] = ()
    if (height, width) != (size, size):
        adapt += (Resize("resize", size, size),)
    if channels == 1:
        adapt += (ToRGB("to_rgb"),)
    return (
        Input("input", (height, width, channels)),
        *adapt,
        *_features(variant),
        Flatten("flatten"),
        FC("fc1", 4096, "relu"),
        Dropout("dropout1", dropout),
        FC("fc2", 4096, "relu"),
        Dropout("dropout2", dropout),
        FC("fc3", num_classes, "softmax"),
    )


def _features(variant: str) -> tuple[Conv | Pool, ...]:
    """conv1..conv5 with the overlapping 3x3/2 max-pools (Krizhevsky et al. 2012, sec. 3.4)."""
    p1, p2, p3, p4, p5 = PADDING[variant]
    return (
        Conv("conv1", 96, 11, S=4, P=p1),
        Pool("pool1", 3, 2),
        Conv("conv2", 256, 5, P=p2),
        Pool("pool2", 3, 2),
        Conv("conv3", 384, 3, P=p3),
        Conv("conv4", 384, 3, P=p4),
        Conv("conv5", 256, 3, P=p5),
        Pool("pool3", 3, 2),
    )


def min_image_size(variant: str = "lecture") -> int:
    """Smallest ``image_size`` for which the last max-pool still yields 1x1.

    Walks the conv/pool chain backwards, inverting W_o = floor((W_I - F + 2P)/S) + 1: an
    output of m pixels needs an input of at least (m - 1)S + F - 2P. This gives 195 for
    "lecture" and 63 for "original".
    """
    check_choice("variant", variant, VARIANTS)
    size = 1
    for layer in reversed(_features(variant)):
        size = (size - 1) * layer.S + layer.F - 2 * layer.P
    return size


def resolve_defaults(settings: dict[str, Any]) -> dict[str, Any]:
    """``image_size=None`` stands for the variant's own size (227 or 224)."""
    if settings["image_size"] is None:
        settings = {**settings, "image_size": IMAGE_SIZE[settings["variant"]]}
    return settings


def lecture_notes(settings: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lecture's "27.55M" sums rounded per-layer figures without biases (lecture geometry only)."""
    flatten = next(row for row in rows if row["kind"] == "flatten")
    if settings["variant"] != "lecture" or flatten["output_shape"] != (1024,) or settings["num_classes"] != 1000:
        return []
    weights = sum(row["weights"] for row in rows)
    return [
        'Lecture: "Total Parameters: 27.55M" is the sum of its rounded per-layer figures '
        "(34K + 0.6M + 0.8M + 1.327M + 0.8M + 4M + 16M + 4M ≈ 27.55M) and omits the biases;",
        f"the exact count is {weights:,} weights, {rows[-1]['total']:,} with biases.",
    ]


ARCHITECTURE = Architecture(
    spec=spec,
    citation="Krizhevsky et al. 2012",
    summary="AlexNet: five convolutions (11x11/4 first) with overlapping max-pools, then FC 4096, 4096, classes",
    resolve_defaults=resolve_defaults,
    lecture_notes=lecture_notes,
)

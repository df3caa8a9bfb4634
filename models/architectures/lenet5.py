"""LeNet-5 (LeCun et al., 1998) as taught in the lecture.

conv1 6@5x5 -> pool 2 -> conv2 16@5x5 -> pool 2 -> flatten 400 -> FC 120 -> FC 84 ->
FC ``num_classes`` (softmax): 61,706 parameters for 32x32x1 data and 10 classes.
``activation="relu", pooling="max"`` is the lecture's modern version;
``activation="tanh", pooling="avg"`` is closer to the 1998 network, which however used a
scaled tanh, subsampling with trainable coefficients, a sparse C3 connection table (1,516
instead of 2,416 conv2 parameters) and RBF outputs - all left out here, as in the lecture.

Reference:
    Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to
    document recognition. Proc. IEEE 86(11):2278-2324, 1998.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from models.cnn import (
    FC,
    Architecture,
    Conv,
    Flatten,
    Input,
    Layer,
    Pad,
    Pool,
    Resize,
    check_choice,
    check_input_shape,
    check_num_classes,
)

ACTIVATIONS = ("relu", "tanh")
POOLINGS = ("max", "avg")
SIZE = 32  # the network's own input side


def spec(
    input_shape: Sequence[int] = (SIZE, SIZE, 1),
    num_classes: int = 10,
    activation: str = "relu",
    pooling: str = "max",
) -> tuple[Layer, ...]:
    """LeNet-5's layers for data of ``input_shape`` and ``num_classes`` classes.

    Args:
        input_shape: the data's (height, width, channels). 28x28 is zero-padded by 2 to
            32x32 (as LeCun et al. did with MNIST), other sizes are resized to 32x32;
            channels are kept, so conv1 has 5x5xCx6 weights. Neither adds parameters.
        num_classes: units of the softmax output layer ``fc3``.
        activation: hidden activation, one of ``ACTIVATIONS``.
        pooling: ``"max"`` or ``"avg"``.

    Raises:
        ParameterError: an argument outside the allowed values.
    """
    shape = check_input_shape(input_shape)
    check_num_classes(num_classes)
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("pooling", pooling, POOLINGS)
    if shape[:2] == (SIZE, SIZE):
        adapt: tuple[Layer, ...] = ()
    elif shape[:2] == (28, 28):
        adapt = (Pad("pad", 2),)
    else:
        adapt = (Resize("resize", SIZE, SIZE),)
    return (
        Input("input", shape),
        *adapt,
        Conv("conv1", 6, 5, activation=activation),
        Pool("pool1", 2, 2, pooling),
        Conv("conv2", 16, 5, activation=activation),
        Pool("pool2", 2, 2, pooling),
        Flatten("flatten"),
        FC("fc1", 120, activation),
        FC("fc2", 84, activation),
        FC("fc3", num_classes, "softmax"),
    )


def lecture_notes(settings: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lecture writes FC3 as "84 x 10 = 850": the figure includes the 10 biases."""
    if settings["num_classes"] != 10:
        return []
    return [f'Lecture: FC3 "84 × 10 = 850" includes the 10 biases: 84 × 10 + 10 = {rows[-1]["params"]:,}.']


ARCHITECTURE = Architecture(
    spec=spec,
    citation="LeCun et al. 1998",
    summary="LeNet-5: two 5x5 convolutions with 2x2 pooling, then FC 120, 84, classes (61,706 parameters)",
    lecture_notes=lecture_notes,
)

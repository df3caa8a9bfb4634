"""ResNet-20 (He et al., 2016), the CIFAR-10 network of the paper's section 4.2.

conv1 16@3x3 -> three stages of ``blocks`` (n = 3) basic blocks with ``width``, 2x``width``
and 4x``width`` (16/32/64) filters on 32x32, 16x16 and 8x8 maps -> global average pooling
-> FC ``num_classes`` (softmax): 6n + 2 = 20 layers with weights. A basic block is
3x3 conv - batch norm - ReLU - 3x3 conv - batch norm, plus its input, then ReLU. The first
block of stages 2 and 3 has stride 2; its shortcut is the paper's parameter-free "option A"
(every second pixel, the new channels zero), so the network has the paper's 0.27 M
parameters: 269,722 trained for 10 classes (the convolutions carry no bias, which the
batch norm's shift makes redundant) plus 1,376 batch-norm moving statistics that Keras
also counts.

As in the paper: He initialisation (``he_normal``) of the convolutions, batch norm after
every convolution, no dropout, and weight decay 1e-4 on the convolution and output kernels.
The paper's decay is SGD's (each step subtracts 1e-4 * w besides the gradient); Keras adds a
loss term instead, so it is ``kernel_regularizer=L2(weight_decay / 2)``, whose gradient is
exactly ``weight_decay * w`` (:func:`models.cnn._weight_options`). The pipeline trains every
CNN with Adam rather than the paper's SGD with momentum 0.9 (lr 0.1, divided by 10 at 32k
and 48k iterations, 64k in all), so the term acts as L2 regularisation rather than
decoupled decay. Convolutions pad by 1 on every side (Torch's convention; Keras' "same"
pads stride-2 layers on one side only).

Reference:
    K. He, X. Zhang, S. Ren, J. Sun. Deep residual learning for image recognition.
    CVPR 2016, pp. 770-778, doi:10.1109/CVPR.2016.90.
"""
from __future__ import annotations

from numbers import Real
from typing import Any, Mapping, Sequence

from models.cnn import (
    FC,
    Activation,
    Architecture,
    BatchNorm,
    Conv,
    GlobalAvgPool,
    Input,
    Layer,
    Residual,
    Shortcut,
    check_input_shape,
    check_num_classes,
    is_int,
)
from models.errors import ParameterError

PAPER_TRAINABLE = 269_722  # n = 3, width 16, 10 classes: "0.27M" in He et al. 2016, Table 6


def spec(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    blocks: int = 3,
    width: int = 16,
    weight_decay: float = 1e-4,
) -> tuple[Layer, ...]:
    """ResNet-(6 ``blocks`` + 2)'s layers for data of ``input_shape`` and ``num_classes`` classes.

    Args:
        input_shape: the data's (height, width, channels), taken as it is: the convolutions
            keep the size (stride 1, padding 1) until the two stride-2 blocks, and global
            average pooling accepts any size, so no resizing is needed.
        num_classes: units of the softmax output layer ``fc``.
        blocks: n, the basic blocks per stage (3 gives ResNet-20, 9 ResNet-56).
        width: filters of the first stage (16 in the paper); the others have 2x and 4x.
        weight_decay: the paper's SGD weight decay (1e-4) of every kernel; 0 switches it off.

    Raises:
        ParameterError: an argument outside the allowed values.
    """
    shape = check_input_shape(input_shape)
    check_num_classes(num_classes)
    if not is_int(blocks) or not 1 <= blocks <= 50:
        raise ParameterError(f"blocks must be an integer in [1, 50] (6 * blocks + 2 layers); got {blocks!r}")
    if not is_int(width) or not 1 <= width <= 1024:
        raise ParameterError(f"width must be an integer in [1, 1024]; got {width!r}")
    if not (isinstance(weight_decay, Real) and not isinstance(weight_decay, bool) and 0 <= weight_decay < 1):
        raise ParameterError(f"weight_decay must be a number in [0, 1); got {weight_decay!r}")

    def conv(name: str, filters: int, stride: int = 1) -> Conv:
        return Conv(name, filters, 3, S=stride, P=1, activation="linear", bias=False, init="he_normal",
                    weight_decay=float(weight_decay))

    layers: list[Layer] = [Input("input", shape), conv("conv1", width), BatchNorm("bn1"), Activation("relu1")]
    channels = width
    for stage in (1, 2, 3):
        filters = width * 2 ** (stage - 1)
        for block in range(1, blocks + 1):
            name = f"stage{stage}_block{block}"
            stride = 2 if stage > 1 and block == 1 else 1
            branch = (conv(f"{name}_conv1", filters, stride), BatchNorm(f"{name}_bn1"), Activation(f"{name}_relu1"),
                      conv(f"{name}_conv2", filters), BatchNorm(f"{name}_bn2"))
            shortcut = Shortcut(f"{name}_shortcut", filters, stride) if (stride, channels) != (1, filters) else None
            layers += [Residual(name, branch, shortcut), Activation(f"{name}_relu2")]
            channels = filters
    layers += [GlobalAvgPool("pool"),
               FC("fc", num_classes, "softmax", init="he_normal", weight_decay=float(weight_decay))]
    return tuple(layers)


def lecture_notes(settings: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """He et al. count the trained parameters only: "0.27M" for n = 3, width 16 and 10 classes."""
    if (settings["blocks"], settings["width"], settings["num_classes"]) != (3, 16, 10):
        return []
    trained = sum(row["weights"] + row["biases"] for row in rows)
    return [f'He et al. 2016, Table 6: ResNet-20 has "0.27M" parameters, the {trained:,} trained ones.']


ARCHITECTURE = Architecture(
    spec=spec,
    citation="He et al. 2016",
    summary="ResNet-20: 3x3 conv 16, three stages of 3 residual blocks (16/32/64 filters, batch norm), "
            "global average pooling, FC classes (0.27M parameters)",
    lecture_notes=lecture_notes,
)

"""CNN builders: LeNet-5 (LeCun et al., 1998) and AlexNet (Krizhevsky et al., 2012).

Each architecture is written once, as a tuple of layer specs (:class:`Conv`, :class:`Pool`,
:class:`FC`, ...) returned by :func:`lenet5_spec` / :func:`alexnet_spec`. :func:`build` turns
a spec into an uncompiled Keras 3 model; :mod:`models.describe` turns the same spec into the
lecture's parameter table with W_o = (W_I - F + 2P)/S + 1 and checks it against Keras.

Data of another size or channel count is adapted *inside* the model by parameter-free
layers (zero padding, ``keras.layers.Resizing``, channel replication), so the adaptation
runs on the accelerator together with the network.

Only backend-agnostic Keras 3 is used (``keras.layers``), so ``KERAS_BACKEND=jax`` or
``torch`` work as well as TensorFlow. Importing this module does not import Keras: the
specs and their validation are pure Python, and :func:`build` imports Keras when called.

References:
    Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to
    document recognition. Proc. IEEE 86(11):2278-2324, 1998.
    A. Krizhevsky, I. Sutskever, G. E. Hinton. ImageNet classification with deep
    convolutional neural networks. NIPS 25, 2012.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar, Sequence

from pipeline.errors import ConfigError

ACTIVATIONS = ("relu", "tanh")
POOLINGS = ("max", "avg")
ALEXNET_VARIANTS = ("lecture", "original")
LENET5_SIZE = 32
# Default internal image size: 227 makes the lecture's unpadded conv1 exact ((227-11)/4+1 = 55);
# the paper states 224, which with padding 2 gives floor((224-11+4)/4)+1 = 55.
ALEXNET_IMAGE_SIZE = {"lecture": 227, "original": 224}
# Padding P of conv1..conv5: the lecture's table pads nothing; the paper's layer sizes
# (55, 27, 13, 13, 13) need P = 2, 2, 1, 1, 1.
_ALEXNET_PADDING = {"lecture": (0, 0, 0, 0, 0), "original": (2, 2, 1, 1, 1)}


@dataclass(frozen=True)
class Input:
    """The data as it enters the model, (height, width, channels)."""

    kind: ClassVar[str] = "input"
    name: str
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class Pad:
    """Zero padding by ``P`` pixels on each side (no parameters)."""

    kind: ClassVar[str] = "pad"
    name: str
    P: int


@dataclass(frozen=True)
class Resize:
    """Bilinear resizing to ``height`` x ``width`` (no parameters)."""

    kind: ClassVar[str] = "resize"
    name: str
    height: int
    width: int


@dataclass(frozen=True)
class ToRGB:
    """Replicates a single channel three times (no parameters)."""

    kind: ClassVar[str] = "replicate"
    name: str


@dataclass(frozen=True)
class Conv:
    """``filters`` F x F convolutions with stride S after zero padding P."""

    kind: ClassVar[str] = "conv"
    name: str
    filters: int
    F: int
    S: int = 1
    P: int = 0
    activation: str = "relu"


@dataclass(frozen=True)
class Pool:
    """F x F pooling with stride S, ``mode`` "max" or "avg" (never padded)."""

    kind: ClassVar[str] = "pool"
    P: ClassVar[int] = 0
    name: str
    F: int
    S: int
    mode: str = "max"


@dataclass(frozen=True)
class Flatten:
    """Feature maps to a vector."""

    kind: ClassVar[str] = "flatten"
    name: str


@dataclass(frozen=True)
class Dropout:
    """Dropout at ``rate`` during training (no parameters)."""

    kind: ClassVar[str] = "dropout"
    name: str
    rate: float


@dataclass(frozen=True)
class FC:
    """A fully connected (Dense) layer."""

    kind: ClassVar[str] = "fc"
    name: str
    units: int
    activation: str


Layer = Input | Pad | Resize | ToRGB | Conv | Pool | Flatten | Dropout | FC


def lenet5_spec(
    input_shape: Sequence[int] = (32, 32, 1),
    num_classes: int = 10,
    activation: str = "relu",
    pooling: str = "max",
) -> tuple[Layer, ...]:
    """LeNet-5 as in the lecture: conv 6@5x5, pool 2, conv 16@5x5, pool 2, FC 120, 84, classes.

    28x28 data is zero-padded by 2 to 32x32, as LeCun et al. (1998) did with MNIST; any
    other size but 32x32 is resized. The data's channels are kept (conv1 has 5x5xCx6
    weights). See :func:`lenet5` for the arguments.
    """
    shape = _check_input_shape(input_shape)
    _check_num_classes(num_classes)
    _check_choice("activation", activation, ACTIVATIONS)
    _check_choice("pooling", pooling, POOLINGS)
    if shape[:2] == (LENET5_SIZE, LENET5_SIZE):
        adapt: tuple[Layer, ...] = ()
    elif shape[:2] == (28, 28):
        adapt = (Pad("pad", 2),)
    else:
        adapt = (Resize("resize", LENET5_SIZE, LENET5_SIZE),)
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


def alexnet_spec(
    input_shape: Sequence[int] | None = None,
    num_classes: int = 1000,
    variant: str = "lecture",
    image_size: int | None = None,
    dropout: float = 0.5,
) -> tuple[Layer, ...]:
    """AlexNet (single-GPU, ungrouped, no LRN) in the lecture's or the paper's geometry.

    Data whose size differs from ``image_size`` is resized; one channel is replicated to
    three. See :func:`alexnet` for the arguments.
    """
    _check_choice("variant", variant, ALEXNET_VARIANTS)
    size = ALEXNET_IMAGE_SIZE[variant] if image_size is None else image_size
    minimum = alexnet_min_image_size(variant)
    if not _is_int(size) or size < minimum:
        raise ConfigError(
            f"alexnet variant {variant!r} needs image_size >= {minimum} (smallest size for "
            f"which the last 3x3/2 max-pool still yields 1x1); got {size!r}"
        )
    height, width, channels = _check_input_shape((size, size, 3) if input_shape is None else input_shape)
    if channels not in (1, 3):
        raise ConfigError(f"alexnet needs 1 or 3 input channels; got input_shape {tuple(input_shape)}")
    _check_num_classes(num_classes)
    if not (isinstance(dropout, Real) and not isinstance(dropout, bool) and 0 <= dropout < 1):
        raise ConfigError(f"dropout must be a number in [0, 1); got {dropout!r}")
    adapt: tuple[Layer, ...] = ()
    if (height, width) != (size, size):
        adapt += (Resize("resize", size, size),)
    if channels == 1:
        adapt += (ToRGB("to_rgb"),)
    return (
        Input("input", (height, width, channels)),
        *adapt,
        *_alexnet_features(variant),
        Flatten("flatten"),
        FC("fc1", 4096, "relu"),
        Dropout("dropout1", dropout),
        FC("fc2", 4096, "relu"),
        Dropout("dropout2", dropout),
        FC("fc3", num_classes, "softmax"),
    )


def _alexnet_features(variant: str) -> tuple[Conv | Pool, ...]:
    """conv1..conv5 with the overlapping 3x3/2 max-pools (Krizhevsky et al. 2012, sec. 3.4)."""
    p1, p2, p3, p4, p5 = _ALEXNET_PADDING[variant]
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


def alexnet_min_image_size(variant: str = "lecture") -> int:
    """Smallest ``image_size`` for which the last max-pool still yields 1x1.

    Walks the conv/pool chain backwards, inverting W_o = floor((W_I - F + 2P)/S) + 1: an
    output of m pixels needs an input of at least (m - 1)S + F - 2P. This gives 195 for
    "lecture" and 63 for "original".
    """
    _check_choice("variant", variant, ALEXNET_VARIANTS)
    size = 1
    for layer in reversed(_alexnet_features(variant)):
        size = (size - 1) * layer.S + layer.F - 2 * layer.P
    return size


def lenet5(
    input_shape: Sequence[int] = (32, 32, 1),
    num_classes: int = 10,
    activation: str = "relu",
    pooling: str = "max",
) -> Any:
    """Uncompiled LeNet-5 (LeCun et al., 1998) as taught in the lecture.

    conv1 6@5x5 -> pool 2 -> conv2 16@5x5 -> pool 2 -> flatten 400 -> FC 120 -> FC 84 ->
    FC ``num_classes`` (softmax): 61,706 parameters for 32x32x1 data and 10 classes.
    ``activation="relu", pooling="max"`` is the lecture's modern version;
    ``activation="tanh", pooling="avg"`` is closer to the 1998 network, which however used
    a scaled tanh, subsampling with trainable coefficients, a sparse C3 connection table
    (1,516 instead of 2,416 conv2 parameters) and RBF outputs - all left out here, as in the
    lecture.

    Args:
        input_shape: the data's (height, width, channels). 28x28 is zero-padded by 2 to
            32x32 (as in the paper), other sizes are resized to 32x32; channels are kept,
            so conv1 has 5x5xCx6 weights. Neither adds parameters.
        num_classes: units of the softmax output layer ``fc3``.
        activation: hidden activation, one of ``ACTIVATIONS``.
        pooling: ``"max"`` or ``"avg"``.

    Raises:
        ConfigError: an argument outside the allowed values.
    """
    return build(lenet5_spec(input_shape, num_classes, activation, pooling), name="lenet5")


def alexnet(
    input_shape: Sequence[int] | None = None,
    num_classes: int = 1000,
    variant: str = "lecture",
    image_size: int | None = None,
    dropout: float = 0.5,
) -> Any:
    """Uncompiled AlexNet (Krizhevsky et al., 2012), single-GPU form.

    ``variant="lecture"`` is the lecture's table, no padding: conv1 96@11x11/4 -> 55,
    max-pool 3/2 -> 27, conv2 256@5x5 -> 23, pool -> 11, conv3 384@3x3 -> 9, conv4
    384@3x3 -> 7, conv5 256@3x3 -> 5, pool -> 2, flatten 1,024 -> FC 4,096 -> FC 4,096 ->
    FC ``num_classes``: 28,823,912 parameters for 1000 classes.

    ``variant="original"`` pads as the paper: conv1 P2 -> 55, pool -> 27, conv2 P2 -> 27,
    pool -> 13, conv3..5 P1 -> 13, pool -> 6, flatten 9,216 -> 4,096 -> 4,096 -> classes:
    62,378,344 parameters for 1000 classes. The paper's two-GPU grouping of conv2, conv4
    and conv5 (60,965,224 parameters) and its local response normalisation are left out.

    Both use ReLU and dropout after fc1 and fc2, as the paper (no parameters).

    Args:
        input_shape: the data's (height, width, channels), channels 1 or 3; default
            ``(image_size, image_size, 3)``. Other sizes are resized to ``image_size`` and
            one channel is replicated to three inside the model, without parameters.
        num_classes: units of the softmax output layer ``fc3``.
        variant: ``"lecture"`` or ``"original"``.
        image_size: side of the square image conv1 sees; default 227 ("lecture") or
            224 ("original"); at least :func:`alexnet_min_image_size` (195 or 63).
        dropout: dropout rate in [0, 1).

    Raises:
        ConfigError: an argument outside the allowed values, or image_size too small.
    """
    return build(alexnet_spec(input_shape, num_classes, variant, image_size, dropout), name="alexnet")


BUILDERS = {"lenet5": lenet5, "alexnet": alexnet}
SPECS = {"lenet5": lenet5_spec, "alexnet": alexnet_spec}


def build(spec: Sequence[Layer], name: str) -> Any:
    """The uncompiled ``keras.Model`` of a spec whose first layer is an :class:`Input`."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=spec[0].shape, name=spec[0].name)
    x = inputs
    for layer in spec[1:]:
        match layer:
            case Pad():
                x = layers.ZeroPadding2D(layer.P, name=layer.name)(x)
            case Resize():
                x = layers.Resizing(layer.height, layer.width, name=layer.name)(x)
            case ToRGB():
                x = layers.Concatenate(name=layer.name)([x, x, x])
            case Conv():
                if layer.P:
                    x = layers.ZeroPadding2D(layer.P, name=f"{layer.name}_pad")(x)
                x = layers.Conv2D(layer.filters, layer.F, strides=layer.S, activation=layer.activation,
                                  name=layer.name)(x)
            case Pool():
                pool = layers.MaxPooling2D if layer.mode == "max" else layers.AveragePooling2D
                x = pool(layer.F, strides=layer.S, name=layer.name)(x)
            case Flatten():
                x = layers.Flatten(name=layer.name)(x)
            case Dropout():
                x = layers.Dropout(layer.rate, name=layer.name)(x)
            case FC():
                x = layers.Dense(layer.units, activation=layer.activation, name=layer.name)(x)
    return keras.Model(inputs, x, name=name)


def count_params(model: Any) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts of a built Keras model."""
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    non_trainable = sum(math.prod(v.shape) for v in model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r}; allowed: {', '.join(allowed)}")


def _check_input_shape(shape: Any) -> tuple[int, int, int]:
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 3
        or not all(_is_int(v) and v >= 1 for v in shape)
    ):
        raise ConfigError(f"input_shape must be three positive integers (height, width, channels); got {shape!r}")
    return tuple(int(v) for v in shape)


def _check_num_classes(num_classes: Any) -> None:
    if not _is_int(num_classes) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2; got {num_classes!r}")

"""The CNN vocabulary: layer specs, :class:`Architecture`, :func:`build` and :func:`count_params`.

An architecture is written once, as a tuple of layer specs (:class:`Conv`, :class:`Pool`,
:class:`FC`, ...) returned by its spec function; the architectures themselves live one per
module in :mod:`models.architectures` (LeNet-5, AlexNet, ResNet-20). A :class:`Residual`
block holds its own branch of specs and adds its shortcut to it, so a residual network is a
flat tuple of blocks like any other. :func:`build` turns a spec into an
uncompiled Keras 3 model; :mod:`models.describe` turns the same spec into the lecture's
parameter table with W_o = (W_I - F + 2P)/S + 1 and checks it against Keras.

Data of another size or channel count is adapted *inside* the model by parameter-free
layers (zero padding, ``keras.layers.Resizing``, channel replication), so the adaptation
runs on the accelerator together with the network.

Only backend-agnostic Keras 3 is used (``keras.layers``), so ``KERAS_BACKEND=jax`` or
``torch`` work as well as TensorFlow. Importing this module does not import Keras: the
specs and their validation are pure Python, and :func:`build` imports Keras when called.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Callable, ClassVar, Mapping, Sequence

from models.errors import ParameterError

SHAPE_ARGUMENTS = ("input_shape", "num_classes")  # every spec function's first two arguments


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
    bias: bool = True
    init: str = "glorot_uniform"  # Keras' default kernel initializer
    weight_decay: float = 0.0  # SGD-style decay d: adds (d / 2) * sum(w ** 2) to the loss


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalisation (Ioffe & Szegedy 2015) over the channels: a trained scale gamma and
    shift beta per channel, and the moving mean and variance (not trained) used at inference."""

    kind: ClassVar[str] = "batchnorm"
    name: str
    momentum: float = 0.9  # of the moving statistics; Torch's 0.1 written the Keras way round
    epsilon: float = 1e-5


@dataclass(frozen=True)
class Activation:
    """An element-wise activation on its own (after :class:`BatchNorm` or a residual sum)."""

    kind: ClassVar[str] = "activation"
    name: str
    function: str = "relu"


@dataclass(frozen=True)
class Shortcut:
    """He et al.'s (2016) parameter-free "option A" shortcut: every S-th pixel along rows and
    columns (a 1x1 pooling of stride S), then zero channels appended up to ``filters``."""

    kind: ClassVar[str] = "shortcut"
    F: ClassVar[int] = 1
    P: ClassVar[int] = 0
    name: str
    filters: int
    S: int


@dataclass(frozen=True)
class Residual:
    """``y = branch(x) + shortcut(x)``: ``branch`` runs on the block's input, the sum is the
    Keras layer ``<name>_add``; ``shortcut`` None is the identity."""

    kind: ClassVar[str] = "add"
    name: str
    branch: tuple["Layer", ...]
    shortcut: Shortcut | None = None

    @property
    def add_name(self) -> str:
        return f"{self.name}_add"


@dataclass(frozen=True)
class GlobalAvgPool:
    """The mean of every feature map: (H, W, C) -> (C,)."""

    kind: ClassVar[str] = "gap"
    name: str


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
    init: str = "glorot_uniform"
    weight_decay: float = 0.0  # as Conv's


Layer = (Input | Pad | Resize | ToRGB | Conv | BatchNorm | Activation | Shortcut | Residual | Pool | GlobalAvgPool
         | Flatten | Dropout | FC)


@dataclass(frozen=True)
class Architecture:
    """One CNN of the registry (:mod:`models.architectures`): its spec function and what describes it.

    Attributes:
        spec: ``spec(input_shape=..., num_classes=..., <arch params>) -> tuple[Layer, ...]``;
            validates its arguments (:class:`~models.errors.ParameterError`) and returns the
            layers, the first an :class:`Input`.
        citation: the paper, short form (``"LeCun et al. 1998"``), shown by ``cvd describe``.
        summary: one line on what the network is.
        resolve_defaults: optional; receives every spec argument with its default applied
            and returns them with defaults that depend on other arguments filled in (AlexNet's
            ``image_size=None`` means 227 or 224 by variant), for :meth:`settings`.
        lecture_notes: optional; ``lecture_notes(settings, rows) -> list[str]``, the lines
            ``cvd describe`` adds under the table where the lecture's own figures differ
            from it (rows as :func:`models.describe.layer_table` returns them).
        name: the module's name, set by the registry.
    """

    spec: Callable[..., tuple[Layer, ...]]
    citation: str
    summary: str
    resolve_defaults: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    lecture_notes: Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], list[str]] | None = None
    name: str = ""

    def parameters(self) -> tuple[str, ...]:
        """The spec's own arguments, what params.yaml ``cnn.<name>`` may set (besides training overrides)."""
        return tuple(p for p in inspect.signature(self.spec).parameters if p not in SHAPE_ARGUMENTS)

    @property
    def default_num_classes(self) -> int:
        return inspect.signature(self.spec).parameters["num_classes"].default

    def default_input_shape(self, **params: Any) -> tuple[int, int, int]:
        """The input shape the network is drawn for when no data shape is given."""
        return self.layers(**params)[0].shape

    def layers(self, input_shape: Sequence[int] | None = None, num_classes: int | None = None,
               **params: Any) -> tuple[Layer, ...]:
        """The validated layer specs; None (for any argument) means the spec's default.

        Raises:
            ParameterError: an argument the spec does not take, or a value it rejects.
        """
        return self.spec(**self._arguments(input_shape, num_classes, params))

    def build(self, input_shape: Sequence[int] | None = None, num_classes: int | None = None,
              **params: Any) -> Any:
        """The uncompiled ``keras.Model`` named after the architecture (arguments as :meth:`layers`)."""
        return build(self.layers(input_shape, num_classes, **params), name=self.name)

    def settings(self, input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                 **params: Any) -> dict[str, Any]:
        """Every spec argument with its effective value; ``input_shape`` is the one the model takes."""
        arguments = self._arguments(input_shape, num_classes, params)
        bound = inspect.signature(self.spec).bind(**arguments)
        bound.apply_defaults()
        settings = dict(bound.arguments)
        if self.resolve_defaults is not None:
            settings = self.resolve_defaults(settings)
        settings["input_shape"] = self.spec(**arguments)[0].shape
        return settings

    def _arguments(self, input_shape: Any, num_classes: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        given = {"input_shape": input_shape, "num_classes": num_classes, **params}
        allowed = inspect.signature(self.spec).parameters
        unknown = [key for key in given if key not in allowed]
        if unknown:
            raise ParameterError(f"{self.name or self.spec.__module__} takes no {', '.join(unknown)}; "
                                 f"allowed: {', '.join(allowed)}")
        return {key: value for key, value in given.items() if value is not None}


def build(spec: Sequence[Layer], name: str) -> Any:
    """The uncompiled ``keras.Model`` of a spec whose first layer is an :class:`Input`."""
    import keras

    inputs = keras.Input(shape=spec[0].shape, name=spec[0].name)
    return keras.Model(inputs, _apply(spec[1:], inputs), name=name)


def _apply(spec: Sequence[Layer], x: Any) -> Any:
    """``x`` through the Keras layers of ``spec``, in order."""
    from keras import layers

    for layer in spec:
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
                                  name=layer.name, **_weight_options(layer))(x)
            case BatchNorm():
                x = layers.BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon, name=layer.name)(x)
            case Activation():
                x = layers.Activation(layer.function, name=layer.name)(x)
            case Shortcut():
                x = _shortcut(layer, x)
            case Residual():
                x = layers.Add(name=layer.add_name)([_apply(layer.branch, x),
                                                     x if layer.shortcut is None else _shortcut(layer.shortcut, x)])
            case Pool():
                pool = layers.MaxPooling2D if layer.mode == "max" else layers.AveragePooling2D
                x = pool(layer.F, strides=layer.S, name=layer.name)(x)
            case GlobalAvgPool():
                x = layers.GlobalAveragePooling2D(name=layer.name)(x)
            case Flatten():
                x = layers.Flatten(name=layer.name)(x)
            case Dropout():
                x = layers.Dropout(layer.rate, name=layer.name)(x)
            case FC():
                x = layers.Dense(layer.units, activation=layer.activation, name=layer.name,
                                 **_weight_options(layer))(x)
    return x


def _weight_options(layer: Conv | FC) -> dict[str, Any]:
    """Keras' bias switch, kernel initializer and L2 regularizer, passed only where they differ
    from Keras' defaults (so LeNet-5 and AlexNet build exactly as before they existed)."""
    from keras import regularizers

    options: dict[str, Any] = {} if getattr(layer, "bias", True) else {"use_bias": False}
    if layer.init != "glorot_uniform":
        options["kernel_initializer"] = layer.init
    if layer.weight_decay:
        # SGD's weight decay d subtracts d * w from the gradient step: the gradient of (d / 2) * |w|^2
        options["kernel_regularizer"] = regularizers.L2(layer.weight_decay / 2)
    return options


def _shortcut(layer: Shortcut, x: Any) -> Any:
    """Option A with built-in Keras layers only (so a saved model loads without custom code):
    the 1x1 max-pool of stride S keeps every S-th pixel; the channels are zero-padded at the
    end by viewing (H, W, C) as (H, W, C, 1) for ZeroPadding3D."""
    from keras import layers

    height, width, channels = x.shape[1:]
    if layer.S > 1:
        x = layers.MaxPooling2D(1, strides=layer.S, name=f"{layer.name}_subsample")(x)
        height, width = x.shape[1:3]
    extra = layer.filters - channels
    if extra:
        x = layers.Reshape((height, width, channels, 1), name=f"{layer.name}_split")(x)
        x = layers.ZeroPadding3D(((0, 0), (0, 0), (0, extra)), name=f"{layer.name}_zeros")(x)
    return layers.Reshape((height, width, layer.filters), name=layer.name)(x)


def count_params(model: Any) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts of a built Keras model."""
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    non_trainable = sum(math.prod(v.shape) for v in model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


# --- argument checks shared by the spec functions --------------------------------------------

def is_int(value: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ParameterError(f"{name} = {value!r}; allowed: {', '.join(allowed)}")


def check_input_shape(shape: Any) -> tuple[int, int, int]:
    """``shape`` as three positive ints (height, width, channels)."""
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 3
        or not all(is_int(v) and v >= 1 for v in shape)
    ):
        raise ParameterError(f"input_shape must be three positive integers (height, width, channels); got {shape!r}")
    return tuple(int(v) for v in shape)


def check_num_classes(num_classes: Any) -> None:
    if not is_int(num_classes) or num_classes < 2:
        raise ParameterError(f"num_classes must be an integer >= 2; got {num_classes!r}")

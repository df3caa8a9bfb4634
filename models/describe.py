"""Parameter tables of the CNNs, computed from their layer specs with the lecture's formulas.

Output size of a convolution or pooling: W_o = (W_I - F + 2P)/S + 1, rounded down (as
Keras' "valid" layers do). Parameters: a convolution with K filters of F x F over D input
channels has F*F*D*K weights and K biases; a fully connected layer from N to M units has
N*M weights and M biases. The "dense equivalent" of a convolution is the number of weights
a fully connected layer between the same input and output would need,
H_in*W_in*D_in * H_out*W_out*D_out: what weight sharing saves.

:func:`layer_table` works from the specs in :mod:`models.cnn` alone; :func:`describe` also
builds the Keras model and checks every row's output shape and the total against it, which
is what proves the table.

References: LeCun et al. 1998 (LeNet-5); Krizhevsky et al. 2012 (AlexNet); full citations
in :mod:`models.cnn`.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Sequence

from models import cnn
from pipeline.errors import ConfigError

CITATIONS = {"lenet5": "LeCun et al. 1998", "alexnet": "Krizhevsky et al. 2012"}
_COLUMNS = (  # header, row key, left-aligned
    ("Layer", "name", True),
    ("Kind", "kind", True),
    ("Output", "output_shape", True),
    ("F", "F", False),
    ("S", "S", False),
    ("P", "P", False),
    ("Weights", "weights", False),
    ("Biases", "biases", False),
    ("Params", "params", False),
    ("Total", "total", False),
    ("Dense equiv.", "dense_equivalent", False),
)


class TableMismatchError(AssertionError):
    """The formula's table disagrees with the Keras model built from the same spec."""


def layer_table(
    arch: str, input_shape: Sequence[int] | None = None, num_classes: int | None = None, **arch_kwargs: Any
) -> list[dict[str, Any]]:
    """One row per layer of ``arch`` (dropout left out), computed from its spec.

    Each row has ``name``, ``kind`` (input, pad, resize, replicate, conv, pool, flatten,
    fc), ``output_shape`` (H, W, D) or (N,), ``F``, ``S``, ``P`` (None where they do not
    apply), ``weights``, ``biases``, ``params``, ``total`` (running) and
    ``dense_equivalent`` (convolutions only, else None).

    Args:
        arch: ``"lenet5"`` or ``"alexnet"``.
        input_shape, num_classes, arch_kwargs: the builder's arguments; None means the
            builder's default.

    Raises:
        ConfigError: an unknown architecture or argument, or a value the builder rejects.
    """
    kwargs = _arch_kwargs(arch, input_shape, num_classes, arch_kwargs)
    return _rows(cnn.SPECS[arch](**kwargs))


def describe(
    arch: str, input_shape: Sequence[int] | None = None, num_classes: int | None = None, **arch_kwargs: Any
) -> str:
    """The layer table of ``arch`` as fixed-width text, checked against Keras.

    Builds the model with :data:`models.cnn.BUILDERS` and compares each row's output shape
    and the table's total with the model's layer shapes and ``count_params()``. Adds the
    lecture's notes: LeNet-5's FC3 "84 x 10 = 850" counts biases; AlexNet's "27.55M" sums
    rounded figures without biases.

    Raises:
        ConfigError: as :func:`layer_table`.
        TableMismatchError: the table disagrees with the Keras model (a bug).
    """
    kwargs = _arch_kwargs(arch, input_shape, num_classes, arch_kwargs)
    spec = cnn.SPECS[arch](**kwargs)
    rows = _rows(spec)
    keras_total = _check_against_keras(rows, cnn.BUILDERS[arch](**kwargs))
    settings = _settings(arch, kwargs, spec)
    weights = sum(row["weights"] for row in rows)
    biases = sum(row["biases"] for row in rows)
    title = ", ".join(f"{key}={value!r}" for key, value in settings.items())
    lines = [
        f"{arch} ({CITATIONS[arch]}): {title}",
        "",
        *_format(rows),
        "",
        "Output: W_o = (W_I - F + 2P)/S + 1, rounded down.",
        "Dense equiv.: weights of a fully connected layer between the same input and output.",
        f"Total: {rows[-1]['total']:,} parameters ({weights:,} weights + {biases:,} biases); "
        f"matches Keras count_params() = {keras_total:,}.",
        *_lecture_notes(arch, settings, rows, weights),
    ]
    return "\n".join(lines)


def _arch_kwargs(
    arch: str, input_shape: Sequence[int] | None, num_classes: int | None, arch_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The builder's keyword arguments, None values dropped; ConfigError for unknown ones."""
    if arch not in cnn.SPECS:
        raise ConfigError(f"unknown architecture {arch!r}; allowed: {', '.join(cnn.SPECS)}")
    given = {"input_shape": input_shape, "num_classes": num_classes, **arch_kwargs}
    kwargs = {key: value for key, value in given.items() if value is not None}
    allowed = inspect.signature(cnn.SPECS[arch]).parameters
    unknown = [key for key in kwargs if key not in allowed]
    if unknown:
        raise ConfigError(f"{arch} takes no {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return kwargs


def _output_size(n: int, f: int, p: int, s: int) -> int:
    """W_o = (W_I - F + 2P)/S + 1, rounded down as Keras' "valid" convolution and pooling."""
    return (n - f + 2 * p) // s + 1


def _rows(spec: Sequence[cnn.Layer]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    shape: tuple[int, ...] = ()
    total = 0
    for layer in spec:
        if isinstance(layer, cnn.Dropout):
            continue
        fsp = (None, None, None)
        weights = biases = 0
        dense_equivalent = None
        match layer:
            case cnn.Input():
                out = layer.shape
            case cnn.Pad():
                out = (shape[0] + 2 * layer.P, shape[1] + 2 * layer.P, shape[2])
                fsp = (None, None, layer.P)
            case cnn.Resize():
                out = (layer.height, layer.width, shape[2])
            case cnn.ToRGB():
                out = (shape[0], shape[1], 3)
            case cnn.Conv() | cnn.Pool():
                depth = layer.filters if layer.kind == "conv" else shape[2]
                out = (*(_output_size(n, layer.F, layer.P, layer.S) for n in shape[:2]), depth)
                fsp = (layer.F, layer.S, layer.P)
                if layer.kind == "conv":
                    weights, biases = layer.F * layer.F * shape[2] * depth, depth
                    dense_equivalent = math.prod(shape) * math.prod(out)
            case cnn.Flatten():
                out = (math.prod(shape),)
            case cnn.FC():
                out = (layer.units,)
                weights, biases = shape[0] * layer.units, layer.units
        total += weights + biases
        rows.append({
            "name": layer.name,
            "kind": layer.kind,
            "output_shape": out,
            "F": fsp[0],
            "S": fsp[1],
            "P": fsp[2],
            "weights": weights,
            "biases": biases,
            "params": weights + biases,
            "total": total,
            "dense_equivalent": dense_equivalent,
        })
        shape = out
    return rows


def _check_against_keras(rows: list[dict[str, Any]], model: Any) -> int:
    """Keras' count_params(), after checking it and every row's output shape against the table."""
    problems = []
    for row in rows:
        keras_shape = tuple(model.get_layer(row["name"]).output.shape[1:])
        if keras_shape != row["output_shape"]:
            problems.append(f"{row['name']}: table {row['output_shape']}, Keras {keras_shape}")
    keras_total = model.count_params()
    if keras_total != rows[-1]["total"]:
        problems.append(f"total: table {rows[-1]['total']:,}, Keras count_params() {keras_total:,}")
    if problems:
        raise TableMismatchError("layer table disagrees with the Keras model: " + "; ".join(problems))
    return keras_total


def _settings(arch: str, kwargs: dict[str, Any], spec: Sequence[cnn.Layer]) -> dict[str, Any]:
    """Every builder argument with its effective value, for the title line."""
    bound = inspect.signature(cnn.SPECS[arch]).bind(**kwargs)
    bound.apply_defaults()
    settings = dict(bound.arguments, input_shape=spec[0].shape)
    if arch == "alexnet" and settings["image_size"] is None:
        settings["image_size"] = cnn.ALEXNET_IMAGE_SIZE[settings["variant"]]
    return settings


def _cell(key: str, value: Any, kind: str) -> str:
    if value is None or (key in ("weights", "biases", "params") and kind not in ("conv", "fc")):
        return ""
    if key == "output_shape":
        return "×".join(f"{n:,}" for n in value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def _format(rows: list[dict[str, Any]]) -> list[str]:
    cells = [[header for header, _, _ in _COLUMNS]]
    cells += [[_cell(key, row[key], row["kind"]) for _, key, _ in _COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]

    def line(values: list[str]) -> str:
        return "  ".join(
            value.ljust(width) if left else value.rjust(width)
            for value, width, (_, _, left) in zip(values, widths, _COLUMNS)
        ).rstrip()

    return [line(cells[0]), "  ".join("-" * width for width in widths), *(line(values) for values in cells[1:])]


def _lecture_notes(arch: str, settings: dict[str, Any], rows: list[dict[str, Any]], weights: int) -> list[str]:
    """The lecture's rounded or bias-inclusive figures, explained where the table is the lecture's."""
    last = rows[-1]
    if arch == "lenet5" and settings["num_classes"] == 10:
        return [
            f'Lecture: FC3 "84 × 10 = 850" includes the 10 biases: 84 × 10 + 10 = {last["params"]:,}.'
        ]
    flatten = next(row for row in rows if row["kind"] == "flatten")
    lecture_geometry = settings.get("variant") == "lecture" and flatten["output_shape"] == (1024,)
    if arch == "alexnet" and lecture_geometry and settings["num_classes"] == 1000:
        return [
            'Lecture: "Total Parameters: 27.55M" is the sum of its rounded per-layer figures '
            "(34K + 0.6M + 0.8M + 1.327M + 0.8M + 4M + 16M + 4M ≈ 27.55M) and omits the biases;",
            f"the exact count is {weights:,} weights, {last['total']:,} with biases.",
        ]
    return []

"""Parameter tables of the CNNs, computed from their layer specs with the lecture's formulas.

Output size of a convolution or pooling: W_o = (W_I - F + 2P)/S + 1, rounded down (as
Keras' "valid" layers do; :func:`features.conv.conv_output_size` with ``exact=False``).
Parameters: a convolution with K filters of F x F over D input channels has F*F*D*K
weights and K biases (none where batch normalisation follows, whose shift replaces them); a
fully connected layer from N to M units has N*M weights and M biases; batch normalisation
over C channels has 2C trained parameters (scale gamma, shift beta) and 2C moving statistics
(mean, variance) that Keras counts but does not train. The "dense equivalent" of a
convolution is the number of weights a fully connected layer between the same input and
output would need, H_in*W_in*D_in * H_out*W_out*D_out: what weight sharing saves.

:func:`layer_table` works from an architecture's spec alone (:mod:`models.architectures`);
:func:`describe` also builds the Keras model and checks every row's output shape and the
total against it, which is what proves the table. Everything specific to one architecture
(citation, defaults, the lecture's own figures) comes from its registry entry.

References: LeCun et al. 1998 (LeNet-5); Krizhevsky et al. 2012 (AlexNet); He et al. 2016
(ResNet-20); full citations in the modules of :mod:`models.architectures`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from features.conv import conv_output_size
from models import architectures, cnn
from models.errors import ParameterError

COLUMNS = {  # header -> row key
    "Layer": "name",
    "Kind": "kind",
    "Output": "output_shape",
    "F": "F",
    "S": "S",
    "P": "P",
    "Weights": "weights",
    "Biases": "biases",
    "Params": "params",
    "Total": "total",
    "Dense equiv.": "dense_equivalent",
}
TEXT_COLUMNS = ("Layer", "Kind", "Output")  # left-aligned; the numbers are right-aligned


class TableMismatchError(AssertionError):
    """The formula's table disagrees with the Keras model built from the same spec."""


def layer_table(
    arch: str, input_shape: Sequence[int] | None = None, num_classes: int | None = None, **arch_params: Any
) -> list[dict[str, Any]]:
    """One row per layer of ``arch`` (dropout left out), computed from its spec.

    Each row has ``name``, ``kind`` (input, pad, resize, replicate, conv, batchnorm,
    activation, shortcut, add, pool, gap, flatten, fc), ``output_shape`` (H, W, D) or (N,),
    ``F``, ``S``, ``P`` (None where they do not apply), ``weights``, ``biases``,
    ``non_trainable`` (batch norm's moving statistics), ``params`` (the three summed),
    ``total`` (running) and ``dense_equivalent`` (convolutions only, else None). A residual
    block gives the rows of its branch, then of its shortcut, then its sum (kind ``add``).

    Args:
        arch: a registered architecture (:func:`models.architectures.names`).
        input_shape, num_classes, arch_params: the spec's arguments; None means its default.

    Raises:
        models.errors.ParameterError: an unknown architecture or argument, or a value the
            spec rejects.
    """
    return rows_of(architectures.get(arch).layers(input_shape, num_classes, **arch_params))


def describe(
    arch: str, input_shape: Sequence[int] | None = None, num_classes: int | None = None, **arch_params: Any
) -> str:
    """The layer table of ``arch`` as text, checked against Keras, with the lecture's notes.

    Builds the model and compares each row's output shape and the table's total with the
    model's layer shapes and ``count_params()``; then adds the architecture's lecture notes
    (where the lecture's figures are rounded or include biases).

    Raises:
        models.errors.ParameterError: as :func:`layer_table`.
        TableMismatchError: the table disagrees with the Keras model (a bug).
    """
    architecture = architectures.get(arch)
    rows = rows_of(architecture.layers(input_shape, num_classes, **arch_params))
    keras_total = check_against_keras(rows, architecture.build(input_shape, num_classes, **arch_params))
    settings = architecture.settings(input_shape, num_classes, **arch_params)
    weights = sum(row["weights"] for row in rows)
    biases = sum(row["biases"] for row in rows)
    non_trainable = sum(row["non_trainable"] for row in rows)
    statistics = f" + {non_trainable:,} batch-norm moving means and variances" if non_trainable else ""
    title = ", ".join(f"{key}={value!r}" for key, value in settings.items())
    notes = architecture.lecture_notes(settings, rows) if architecture.lecture_notes else []
    return "\n".join([
        f"{arch} ({architecture.citation}): {title}",
        "",
        render(rows),
        "",
        "Output: W_o = (W_I - F + 2P)/S + 1, rounded down.",
        "Dense equiv.: weights of a fully connected layer between the same input and output.",
        f"Total: {rows[-1]['total']:,} parameters ({weights:,} weights + {biases:,} biases{statistics}); "
        f"matches Keras count_params() = {keras_total:,}.",
        *([f"Trainable: {weights + biases:,}. Batch norm: Weights = scale gamma, Biases = shift beta; its "
           "Params add the moving mean and variance, counted by Keras but not trained."] if non_trainable else []),
        *notes,
    ])


def rows_of(spec: Sequence[cnn.Layer]) -> list[dict[str, Any]]:
    """The table rows (see :func:`layer_table`) of a layer spec."""
    rows: list[dict[str, Any]] = []
    _add_rows(spec, (), rows)
    total = 0
    for row in rows:
        total += row["params"]
        row["total"] = total
    return rows


def _add_rows(spec: Sequence[cnn.Layer], shape: tuple[int, ...], rows: list[dict[str, Any]]) -> tuple[int, ...]:
    """Appends the rows of ``spec`` applied to data of ``shape`` (a residual block's branch,
    then its shortcut, then the sum); returns the output shape."""
    for layer in spec:
        if isinstance(layer, cnn.Dropout):
            continue
        if isinstance(layer, cnn.Residual):
            out = _add_rows(layer.branch, shape, rows)
            skip = _add_rows((layer.shortcut,), shape, rows) if layer.shortcut else shape
            if skip != out:
                raise ParameterError(f"{layer.name}: the branch gives {out}, the shortcut {skip}")
            rows.append(_row(layer.add_name, layer.kind, out))
            shape = out
            continue
        fsp = (None, None, None)
        weights = biases = non_trainable = 0
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
            case cnn.Conv() | cnn.Pool() | cnn.Shortcut():
                depth = shape[2] if layer.kind == "pool" else layer.filters
                out = (*(conv_output_size(n, layer.F, layer.P, layer.S, exact=False) for n in shape[:2]), depth)
                fsp = (layer.F, layer.S, layer.P)
                if layer.kind == "conv":
                    weights, biases = layer.F * layer.F * shape[2] * depth, depth if layer.bias else 0
                    dense_equivalent = math.prod(shape) * math.prod(out)
            case cnn.BatchNorm():
                out = shape
                # trained: gamma ("weights") and beta ("biases"); the moving mean and variance are not
                weights, biases, non_trainable = shape[2], shape[2], 2 * shape[2]
            case cnn.Activation():
                out = shape
            case cnn.GlobalAvgPool():
                out = (shape[2],)
            case cnn.Flatten():
                out = (math.prod(shape),)
            case cnn.FC():
                out = (layer.units,)
                weights, biases = shape[0] * layer.units, layer.units
        rows.append(_row(layer.name, layer.kind, out, fsp, weights, biases, non_trainable, dense_equivalent))
        shape = out
    return shape


def _row(name: str, kind: str, out: tuple[int, ...], fsp: tuple = (None, None, None), weights: int = 0,
         biases: int = 0, non_trainable: int = 0, dense_equivalent: int | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "output_shape": out,
        "F": fsp[0],
        "S": fsp[1],
        "P": fsp[2],
        "weights": weights,
        "biases": biases,
        "non_trainable": non_trainable,
        "params": weights + biases + non_trainable,
        "total": 0,  # running total, filled in by rows_of
        "dense_equivalent": dense_equivalent,
    }


def check_against_keras(rows: list[dict[str, Any]], model: Any) -> int:
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


def _cell(key: str, value: Any, kind: str) -> str:
    """Blank where a value does not apply (and for parameter-free layers' 0 parameters)."""
    if value is None or (key in ("weights", "biases", "params") and kind not in ("conv", "fc", "batchnorm")):
        return ""
    if key == "output_shape":
        return "×".join(f"{n:,}" for n in value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width text table (pandas), text columns left-, numbers right-aligned."""
    import pandas as pd

    table = pd.DataFrame(
        {header: [_cell(key, row[key], row["kind"]) for row in rows] for header, key in COLUMNS.items()}
    )
    formatters, headers = {}, []
    for header in COLUMNS:
        width = max(len(header), *(len(cell) for cell in table[header]))
        align = str.ljust if header in TEXT_COLUMNS else str.rjust
        formatters[header] = lambda cell, width=width, align=align: align(cell, width)
        headers.append(align(header, width))
    text = table.to_string(index=False, formatters=formatters, header=headers, justify="left")
    return "\n".join(line.rstrip() for line in text.splitlines())

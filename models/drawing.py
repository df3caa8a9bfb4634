"""The deep side drawn from a trained Keras model: the learnt convolution filters and an
image's feature maps after every convolution and pooling layer.

Layers are found by their Keras class and the names the architecture specs give them
(``conv1``, ``pool1``, ... in ``models/architectures/*.py``). Every drawing returns a
matplotlib :class:`~matplotlib.figure.Figure` built without pyplot.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from models.errors import InputError

DPI = 100
MAX_MAPS = 16  # feature maps shown per layer
FILTER_LAYERS = {"lenet5": ("conv1", "conv2"), "alexnet": ("conv1",)}  # others: their first convolution


def _layer(model: Any, name: str) -> Any:
    try:
        return model.get_layer(name)
    except ValueError:
        names = ", ".join(layer.name for layer in model.layers)
        raise InputError(f"model {model.name!r} has no layer {name!r}; its layers: {names}") from None


def conv_layer_names(model: Any) -> list[str]:
    """The names of the model's 2-D convolution layers, input to output."""
    import keras

    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def conv_filters(model: Any, name: str) -> np.ndarray:
    """The kernel of convolution layer ``name``: float32 ``(F, F, C_in, K)``."""
    layer = _layer(model, name)
    weights = layer.get_weights()
    if not weights or np.ndim(weights[0]) != 4:
        raise InputError(f"layer {name!r} of model {model.name!r} is not a 2-D convolution")
    return np.asarray(weights[0], dtype=np.float32)


def _normalise(a: np.ndarray) -> np.ndarray:
    low, high = float(a.min()), float(a.max())
    return (a - low) / (high - low) if high > low else np.zeros_like(a)


def mosaic(tiles: list[np.ndarray], columns: int, gap: int = 1, fill: float = np.nan) -> np.ndarray:
    """The equally sized ``tiles`` (``(h, w)`` or ``(h, w, 3)``) in rows of ``columns``, ``gap``
    pixels of ``fill`` between them: one image for one ``imshow`` (a grid of axes costs matplotlib
    ~10 ms per tile to build and draw)."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, *tiles[0].shape[2:]), fill, np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out


def filters_figure(kernel: np.ndarray, title: str) -> Figure:
    """Every filter of a ``(F, F, C_in, K)`` kernel: one RGB tile per filter when ``C_in`` is 3
    (each filter scaled to [0, 1] on its own), else one grey tile per (input channel, filter),
    input channels as rows; blue-white-red for a single input channel (0 = white)."""
    f, _, c_in, k = kernel.shape
    rgb = c_in == 3
    rows = 1 if rgb or c_in == 1 else c_in
    per_row = k if rows > 1 else min(k, 16)
    grid_rows = rows if rows > 1 else int(np.ceil(k / per_row))
    fig = Figure(figsize=(max(4.0, 0.55 * per_row + 1), max(1.6, 0.6 * grid_rows + 1)), dpi=DPI)
    ax = fig.add_subplot()
    ax.set_axis_off()
    if rgb:
        ax.imshow(mosaic([_normalise(kernel[:, :, :, j]) for j in range(k)], per_row, fill=1.0),
                  interpolation="nearest")
    else:
        limit = float(np.abs(kernel).max()) or 1.0
        tiles = [kernel[:, :, i, j] for i in range(c_in) for j in range(k)]  # input channels as rows
        ax.imshow(mosaic(tiles, per_row), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    fig.suptitle(f"{title}: {k} filters of {f}x{f}x{c_in}", fontsize=10)
    return fig


def filter_figures(arch: str, model: Any) -> dict[str, Figure]:
    """``<arch>_<layer>``: the learnt filters of the convolutions worth showing (those of
    :data:`FILTER_LAYERS`, else the first one)."""
    convs = conv_layer_names(model)
    layers = [name for name in FILTER_LAYERS.get(arch, ()) if name in convs] or convs[:1]
    return {f"{arch}_{layer}": filters_figure(conv_filters(model, layer), f"{arch} {layer}") for layer in layers}


def feature_maps(model: Any, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(layer name, maps (h, w, channels))`` after every convolution and pooling layer of
    ``model`` for one uint8 image ``(H, W, C)``, scaled to [0, 1] as in training."""
    import keras

    wanted = [layer for layer in model.layers
              if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D))]
    if not wanted:
        raise InputError(f"model {model.name!r} has no convolution or pooling layer")
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    expected = tuple(model.inputs[0].shape[1:])
    if image.shape != expected:
        raise InputError(f"model {model.name!r} takes images of shape {expected}, got {image.shape}")
    probe = keras.Model(model.inputs[0], [layer.output for layer in wanted])
    outputs = probe(np.asarray(image, dtype=np.float32)[None] / np.float32(255.0), training=False)
    return [(layer.name, np.asarray(keras.ops.convert_to_numpy(out))[0]) for layer, out in zip(wanted, outputs)]


def feature_maps_figure(maps: list[tuple[str, np.ndarray]], image: np.ndarray, title: str) -> Figure:
    """The image, then one row per layer with its first :data:`MAX_MAPS` maps (each scaled to
    its own range: what lights up where)."""
    columns = min(MAX_MAPS, max(m.shape[2] for _, m in maps))
    fig = Figure(figsize=(1.0 + 0.75 * columns, 0.9 * (len(maps) + 1) + 0.6), dpi=DPI)
    axes = fig.subplots(len(maps) + 1, 2, squeeze=False, width_ratios=[1, columns], gridspec_kw={"wspace": 0.05})
    for ax in axes.ravel():
        ax.set_axis_off()
    shown = np.asarray(image)
    axes[0, 0].imshow(shown[..., 0] if shown.ndim == 3 and shown.shape[2] == 1 else shown, cmap="gray",
                      interpolation="nearest")
    axes[0, 0].set_title("input", fontsize=7)
    for row, (name, m) in enumerate(maps, start=1):
        axes[row, 0].text(0.5, 0.5, f"{name}\n{m.shape[0]}x{m.shape[1]}x{m.shape[2]}", ha="center", va="center",
                          fontsize=7, transform=axes[row, 0].transAxes)
        zoom = -(-16 // m.shape[0])  # whole pixels, so that small maps keep a thin gap too
        tiles = [np.kron(_normalise(m[:, :, j]), np.ones((zoom, zoom))) for j in range(min(columns, m.shape[2]))]
        tiles += [np.full(tiles[0].shape, np.nan)] * (columns - len(tiles))  # every row's tiles the same size
        axes[row, 1].imshow(mosaic(tiles, columns, gap=max(1, tiles[0].shape[0] // 8)), cmap="viridis",
                            interpolation="nearest", aspect="equal")
        axes[row, 1].set_anchor("W")
    fig.suptitle(title, fontsize=10)
    return fig

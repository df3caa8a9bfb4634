"""``cvd visualize``: every step of both approaches drawn for the user's own images.

For each image (files given on the command line, or ``--from-split test --n 8`` from
``data/prepared/split.npz``) it writes into ``<out>/<image name>/``:

* ``image.png``      the image as the models see it (enlarged, no smoothing)
* ``sobel.png``      Sobel Gx, Gy and magnitude with ``features.sobel``'s ksize
* ``hog.png``        HOG cell histograms as glyphs with ``features.hog``'s cells and blocks
* ``sift.png``       the dense SIFT grid of ``features.sift`` and the keypoints SIFT detects
* ``bovw.png``       its bag-of-visual-words vector: for a split image, its row of
                     ``data/features/sift.npz``; for a file, the saved fitted extractor
                     (``artifacts/features/sift.skops``) or, without it, ``features.sift`` fitted
                     here on the split's training images with ``seed`` (the same codebook)
* ``<arch>_maps.png``  the feature maps after every convolution/pooling layer of each trained CNN

and once, not per image, ``<out>/lecture/{convolution,padding,stride,max_pool}.png`` (the
lecture's worked examples computed by ``features/conv.py``) and
``<out>/cnn/<arch>_<layer>.png`` (LeNet-5's conv1/conv2 and AlexNet's conv1 filters).

Image files are read and resized exactly as ``prepare`` reads a ``folder`` dataset
(``data.image_size``, ``data.channels``). Usable without DVC: it reads params.yaml and
whatever outputs exist; a CNN named with ``--arch`` that is not trained yet, an unreadable
image or a missing split is one error line.
"""
from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pipeline import layout
from pipeline.config import Config
from pipeline.errors import ConfigError, DataError
from pipeline.io import atomic_path, load_split

OUT_DIR = layout.VISUALIZE_DIR
SPLIT_PATH = layout.SPLIT
CNN_DIR = layout.CNN_MODELS_DIR
SIFT_FEATURES = layout.features_path("sift")
FILTER_LAYERS = {"lenet5": ("conv1", "conv2"), "alexnet": ("conv1",)}  # others: their first convolution
IMAGE_SCALE = 8  # image.png: display pixels per image pixel


@dataclass
class Picture:
    """One image to draw: a file-system-safe name, the uint8 (H, W, C) pixels, a caption."""

    name: str
    image: np.ndarray
    caption: str = ""
    bovw: np.ndarray | None = None  # its sift feature vector when data/features/sift.npz has it


@dataclass
class Tools:
    """What the drawings need besides the image: extractor settings, the fitted SIFT codebook
    (or None) and the trained CNNs by architecture."""

    settings: dict[str, dict[str, Any]]
    sift: Any = None
    cnns: dict[str, Any] = field(default_factory=dict)


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


# ------------------------------------------------------------------------------- input
def read_image_files(paths: Sequence[str | Path], image_size: int | None, channels: int,
                     deskew: bool = False) -> list[Picture]:
    """Read and resize image files as ``prepare`` reads a ``folder`` dataset (and deskew them
    when ``deskew``, as ``prepare`` does with ``data.deskew``)."""
    import cv2

    from pipeline.datasets import preprocess

    pictures, used = [], set()
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(f"{path}: no such image file")
        buf = np.fromfile(path, dtype=np.uint8)
        image = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR) if buf.size else None
        if image is None:
            raise DataError(f"{path}: corrupt or unreadable image")
        if channels == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        image = preprocess(image[None], image_size, channels, deskew)[0]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "image"
        while name in used:
            name += "_"
        used.add(name)
        pictures.append(Picture(name, image, path.name))
    return pictures


def pick_from_split(split, part: str, n: int, seed: int) -> list[Picture]:
    """``n`` images of ``part``, drawn with ``seed`` (the same ones every time), in split order."""
    if part not in split.x:
        raise ConfigError(f"--from-split = {part!r}: allowed: {', '.join(split.x)}")
    if n < 1:
        raise ConfigError(f"--n = {n}: must be at least 1")
    count = len(split.x[part])
    chosen = np.sort(np.random.default_rng(seed).choice(count, size=min(n, count), replace=False))
    return split_pictures(split, part, chosen.tolist())


def split_pictures(split, part: str, indices: Sequence[int]) -> list[Picture]:
    """The images at ``indices`` of ``part``, with their bag-of-visual-words vectors from
    ``data/features/sift.npz`` when that file was computed on this split."""
    vectors = stored_bovw(split, part)
    return [Picture(f"{part}-{i:04d}", split.x[part][i], f"{part} image {i}, class {split.class_names[split.y[part][i]]}",
                    None if vectors is None else vectors[i]) for i in indices]


def stored_bovw(split, part: str) -> np.ndarray | None:
    """``features@sift``'s matrix of ``part`` (the first seed's), if it exists for this split."""
    if not SIFT_FEATURES.is_file():
        return None
    try:
        with np.load(SIFT_FEATURES, allow_pickle=False) as npz:
            if str(npz["split_sha256"]) != split.sha256:
                return None
            return npz[f"x_{part}"]
    except (KeyError, ValueError, OSError):
        return None


def extractor_settings(cfg: Config) -> dict[str, dict[str, Any]]:
    """The sobel, hog and sift extractors' parameters as params.yaml sets them."""
    from pipeline.features import build_extractor

    return {name: build_extractor(cfg, name).get_params() for name in ("sobel", "hog", "sift")}


def fit_sift(cfg: Config, split) -> Any:
    """The sift extractor fitted on the split's training images with ``seed``: the codebook
    ``features@sift`` fits (data/features/sift.npz keeps only the matrices)."""
    from pipeline.features import build_extractor

    return build_extractor(cfg, "sift").fit(split.x["train"], split.y["train"])


def load_cnns(cfg: Config, archs: Sequence[str] | None) -> dict[str, Any]:
    """The trained CNNs: the ``archs`` asked for (an error names one not trained yet), or by
    default every configured architecture whose model file exists (a note names the others)."""
    wanted = list(archs) if archs else list(cfg.cnn.architectures)
    missing = [a for a in wanted if not (CNN_DIR / f"{a}.keras").is_file()]
    if missing and archs:
        raise DataError(f"{CNN_DIR / (missing[0] + '.keras')}: {missing[0]} is not trained yet; run "
                        f"`dvc repro train_cnn@{missing[0]}` (or `cvd train-cnn --arch {missing[0]}`)")
    if missing:
        note(f"no CNN pictures for {', '.join(missing)}: not trained yet ({CNN_DIR}/<arch>.keras missing)")
    present = [a for a in wanted if a not in missing]
    if not present:
        return {}
    import keras

    return {arch: keras.saving.load_model(CNN_DIR / f"{arch}.keras") for arch in present}


# ------------------------------------------------------------------------------ pictures
def image_figures(picture: Picture, tools: Tools) -> dict[str, Any]:
    """The figures of one image by file stem (see the module docstring)."""
    from features import drawing
    from models import drawing as cnn_drawing

    image = picture.image
    sobel, hog, sift = (tools.settings[k] for k in ("sobel", "hog", "sift"))
    figures: dict[str, Any] = {
        "sobel": drawing.sobel_figure(image, sobel["ksize"]),
        "hog": drawing.hog_figure(image, hog["orientations"], hog["pixels_per_cell"], hog["cells_per_block"],
                                  hog["block_norm"], hog["transform_sqrt"]),
        "sift": drawing.sift_figure(image, sift["step"], sift["size"], sift["mode"]),
    }
    vector, bovw = picture.bovw, sift
    if vector is None and tools.sift is not None:
        vector, bovw = tools.sift.transform(image[None])[0], tools.sift.get_params()  # its own settings
    if vector is not None:
        figures["bovw"] = drawing.bovw_figure(vector, bovw["n_words"], bovw["spatial_pyramid"])
    for arch, model in tools.cnns.items():
        maps = cnn_drawing.feature_maps(model, image)
        figures[f"{arch}_maps"] = cnn_drawing.feature_maps_figure(
            maps, image, f"{arch}: feature maps of this image after each convolution / pooling layer")
    return figures


def shared_figures(tools: Tools) -> dict[str, Any]:
    """The figures that do not depend on an image: worked examples and CNN filters."""
    from features import drawing
    from models import drawing as cnn_drawing

    figures = {f"lecture/{name}": drawing.worked_example(name) for name in drawing.WORKED_EXAMPLES}
    for arch, model in tools.cnns.items():
        convs = cnn_drawing.conv_layer_names(model)
        for layer in [name for name in FILTER_LAYERS.get(arch, ()) if name in convs] or convs[:1]:
            figures[f"cnn/{arch}_{layer}"] = cnn_drawing.filters_figure(
                cnn_drawing.conv_filters(model, layer), f"{arch} {layer}")
    return figures


def png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def image_png(image: np.ndarray, scale: int = IMAGE_SCALE) -> bytes:
    """The image enlarged ``scale`` times without smoothing, as PNG bytes."""
    import cv2

    from features.drawing import as_rgb, upscale

    ok, encoded = cv2.imencode(".png", cv2.cvtColor(upscale(as_rgb(image), scale), cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError("could not encode an image as PNG")
    return encoded.tobytes()


def render(pictures: Sequence[Picture], tools: Tools) -> dict[str, bytes]:
    """Every PNG by its path relative to the output folder, rendered in memory."""
    files = {f"{stem}.png": png_bytes(fig) for stem, fig in shared_figures(tools).items()}
    for picture in pictures:
        files[f"{picture.name}/image.png"] = image_png(picture.image)
        for stem, fig in image_figures(picture, tools).items():
            files[f"{picture.name}/{stem}.png"] = png_bytes(fig)
    return files


def write(files: dict[str, bytes], out: Path) -> list[Path]:
    written = []
    for rel, content in files.items():
        with atomic_path(out / rel) as tmp:
            tmp.write_bytes(content)
        written.append(out / rel)
    return written


def prepare_tools(cfg: Config, split, archs: Sequence[str] | None, pictures: Sequence[Picture] = ()) -> Tools:
    """Extractor settings, the trained CNNs and, when some picture has no stored bag of visual
    words, the fitted SIFT extractor: the one ``features@sift`` saved, else one fitted here on
    the split's training images with ``seed`` (the same codebook)."""
    from pipeline.features import extractor_path, load_extractor

    tools = Tools(extractor_settings(cfg))
    if any(p.bovw is None for p in pictures):
        if extractor_path("sift").is_file():
            tools.sift = load_extractor("sift")
        elif split is not None:
            tools.sift = fit_sift(cfg, split)
        else:
            note(f"no bag-of-visual-words pictures: no fitted SIFT codebook ({extractor_path('sift')}) and no "
                 f"{SPLIT_PATH} to fit one on (run `cvd prepare`)")
    tools.cnns = load_cnns(cfg, archs)
    return tools


def run(cfg: Config, files: Sequence[str] = (), from_split: str | None = None, n: int = 8,
        out: str | Path = OUT_DIR, archs: Sequence[str] | None = None) -> list[Path]:
    """``cvd visualize``: draw the images and write the PNGs; returns the paths written."""
    if bool(files) == bool(from_split):
        raise ConfigError("give image files or --from-split PART, not both and not neither")
    split = load_split(SPLIT_PATH) if from_split or SPLIT_PATH.is_file() else None
    if from_split:
        pictures = pick_from_split(split, from_split, n, cfg.seed)
    else:
        pictures = read_image_files(files, cfg.data.image_size, cfg.data.channels, deskew=cfg.data.deskew)
    tools = prepare_tools(cfg, split, archs, pictures)
    written = write(render(pictures, tools), Path(out))
    print(f"wrote {len(written)} pictures of {len(pictures)} image(s) to {out}/ "
          f"({', '.join(p.name for p in pictures[:4])}{' ...' if len(pictures) > 4 else ''})")
    return written

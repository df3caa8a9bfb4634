"""``cvd visualize``: every step of both approaches drawn for the user's own images.

For each image (files given on the command line, or ``--from-split test --n 8`` from
``data/prepared/split.npz``) it writes into ``<out>/<image name>/``:

* ``image.png``        the image as the models see it (enlarged, no smoothing)
* ``<stem>.png``       each picture a registered extractor's drawing returns
                       (``features.Extractor.draw``; each extractor module's ``draw`` names
                       its files), with its params.yaml settings; configured extractors first
* ``<arch>_maps.png``  the feature maps after every convolution/pooling layer of each trained CNN

and once ``<out>/lecture/{convolution,padding,stride,max_pool}.png`` (the lecture's worked
examples, ``features.lecture``) and ``<out>/cnn/<arch>_<layer>.png`` (learnt filters).

A drawing gets the image's row of ``data/features/<name>.npz`` if computed on this split and,
when some image lacks it, the extractor fitted: the one ``features@<name>`` saved, else one
fitted here on the split's training images. Files are read as ``prepare`` reads a ``folder``.
Usable without DVC (params.yaml and whatever outputs exist); a CNN named with ``--arch`` not
trained yet, an unreadable image or a missing split is one error line.
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
IMAGE_SCALE = 8  # image.png: display pixels per image pixel


@dataclass
class Picture:
    """One image to draw: a file-system-safe name, the uint8 (H, W, C) pixels, a caption."""

    name: str
    image: np.ndarray
    caption: str = ""
    features: dict[str, np.ndarray] = field(default_factory=dict)  # its rows of data/features/<name>.npz


@dataclass
class Tools:
    """What the drawings need besides the image, by name: the extractors that draw (built from
    params.yaml, fitted when they could be) and the trained CNNs."""

    extractors: dict[str, Any] = field(default_factory=dict)
    cnns: dict[str, Any] = field(default_factory=dict)


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


# ------------------------------------------------------------------------------- input
def read_image_files(paths: Sequence[str | Path], image_size: int | None, channels: int,
                     deskew: bool = False, max_pixels: int | None = None) -> list[Picture]:
    """Read and resize image files as ``prepare`` reads a ``folder`` dataset (the same checked
    decoder, ``data.max_pixels`` included; deskewed when ``deskew``, as ``prepare`` does)."""
    from pipeline.image_files import DEFAULT_MAX_PIXELS, decode_image_file
    from pipeline.preprocessing import preprocess

    pictures, used = [], set()
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(f"{path}: no such image file")
        image = decode_image_file(path, channels, max_pixels or DEFAULT_MAX_PIXELS)
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
    """The images at ``indices`` of ``part``, with their rows of ``data/features/<name>.npz``
    (every extractor that draws) when that file was computed on this split."""
    from features import drawing_names

    stored = {name: m for name in drawing_names() if (m := stored_features(name, split, part)) is not None}
    return [Picture(f"{part}-{i:04d}", split.x[part][i], f"{part} image {i}, class {split.class_names[split.y[part][i]]}",
                    {name: matrix[i] for name, matrix in stored.items()}) for i in indices]


def stored_features(name: str, split, part: str) -> np.ndarray | None:
    """``features@<name>``'s matrix of ``part`` (the first seed's), if it exists for this split."""
    try:
        with np.load(layout.features_path(name), allow_pickle=False) as npz:
            return npz[f"x_{part}"] if str(npz["split_sha256"]) == split.sha256 else None
    except (KeyError, ValueError, OSError):  # none, or unreadable: the drawing goes without
        return None


def drawing_extractors(cfg: Config, split, pictures: Sequence[Picture]) -> dict[str, Any]:
    """Every extractor that draws, built from params.yaml; when some picture lacks its stored
    features, the one ``cvd features`` saved, else fitted here if ``features.names`` has it (an
    extractor the run does not use is drawn unfitted: a k-means codebook is no sketch's cost),
    else unfitted with a note."""
    from features import drawing_names
    from pipeline.extractors import build_extractor, load_extractor

    extractors, unfitted = {}, []
    for name in drawing_names(cfg.features.names):
        extractor = build_extractor(cfg, name)
        if any(name not in p.features for p in pictures):
            if layout.extractor_path(name).is_file():
                extractor = load_extractor(name)
            elif split is not None and name in cfg.features.names:
                extractor = extractor.fit(split.x["train"], split.y["train"])
            elif name in cfg.features.names:
                unfitted.append(name)
        extractors[name] = extractor
    if unfitted:
        note(f"drawn without a fitted extractor (no artifacts/features/<name>.skops, no {SPLIT_PATH} to fit one on; "
             f"run `cvd prepare`), pictures that need one are left out: {', '.join(unfitted)}")
    return extractors


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
    from features import get_extractor
    from models import drawing as cnn_drawing

    figures: dict[str, Any] = {}
    for name, extractor in tools.extractors.items():
        for stem, fig in get_extractor(name).draw(extractor, picture.image, picture.features.get(name)).items():
            if stem in figures or stem == "image":  # a programming error in an extractor module
                raise ValueError(f"extractor {name}: its drawing {stem!r} is already drawn by another")
            figures[stem] = fig
    for arch, model in tools.cnns.items():
        maps = cnn_drawing.feature_maps(model, picture.image)
        figures[f"{arch}_maps"] = cnn_drawing.feature_maps_figure(
            maps, picture.image, f"{arch}: feature maps of this image after each convolution / pooling layer")
    return figures


def shared_figures(tools: Tools) -> dict[str, Any]:
    """The figures that do not depend on an image: worked examples and CNN filters."""
    from features import lecture
    from models import drawing as cnn_drawing

    figures = {f"lecture/{name}": lecture.worked_example(name) for name in lecture.WORKED_EXAMPLES}
    for arch, model in tools.cnns.items():
        figures |= {f"cnn/{stem}": fig for stem, fig in cnn_drawing.filter_figures(arch, model).items()}
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
    for rel, content in files.items():
        with atomic_path(out / rel) as tmp:
            tmp.write_bytes(content)
    return [out / rel for rel in files]


def prepare_tools(cfg: Config, split, archs: Sequence[str] | None, pictures: Sequence[Picture] = ()) -> Tools:
    """The extractors that draw (:func:`drawing_extractors`) and the trained CNNs."""
    return Tools(drawing_extractors(cfg, split, pictures), load_cnns(cfg, archs))


def run(cfg: Config, files: Sequence[str] = (), from_split: str | None = None, n: int = 8,
        out: str | Path = OUT_DIR, archs: Sequence[str] | None = None) -> list[Path]:
    """``cvd visualize``: draw the images and write the PNGs; returns the paths written."""
    if bool(files) == bool(from_split):
        raise ConfigError("give image files or --from-split PART, not both and not neither")
    split = load_split(SPLIT_PATH) if from_split or SPLIT_PATH.is_file() else None
    if from_split:
        pictures = pick_from_split(split, from_split, n, cfg.seed)
    else:
        pictures = read_image_files(files, cfg.data.image_size, cfg.data.channels, deskew=cfg.data.deskew,
                                    max_pixels=cfg.data.max_pixels)
    tools = prepare_tools(cfg, split, archs, pictures)
    written = write(render(pictures, tools), Path(out))
    print(f"wrote {len(written)} pictures of {len(pictures)} image(s) to {out}/ "
          f"({', '.join(p.name for p in pictures[:4])}{' ...' if len(pictures) > 4 else ''})")
    return written

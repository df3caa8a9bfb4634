"""SIFT descriptors (Lowe 2004) encoded as a bag of visual words (Csurka et al. 2004).

1. **Descriptors** (``cv2.SIFT_create``), one 128-d vector per keypoint:

   * ``mode="dense"`` (default): an upright keypoint (angle 0) of diameter ``size`` every
     ``step`` pixels, centres at ``size/2 + k*step``, ``floor((W - size) / step) + 1`` per
     row (6 x 6 = 36 on a 28 x 28 image with the defaults). Dense sampling is the default
     because SIFT's detector finds only a handful of keypoints (often 0-6) on a 28 x 28
     image. Note that OpenCV's descriptor window is ``4 x 3 * size / 2`` pixels wide
     (4 x 4 spatial bins of 3 sigma, sigma = size / 2), i.e. 48 px for ``size=8``: each
     descriptor sees most of a 28 x 28 image.
   * ``mode="keypoints"``: ``detectAndCompute``, scale-space extrema with their own scale
     and orientation.

   * ``colour="opponent"``: opponent SIFT (van de Sande, Gevers & Snoek 2010): the SIFT
     descriptors of the three opponent channels O1 = (R - G)/sqrt 2, O2 = (R + G - 2B)/sqrt 6
     and O3 = (R + G + B)/sqrt 3 at the same keypoints (the dense grid, or those detected on
     O3, the intensity), concatenated: 384-d. OpenCV's SIFT takes 8-bit images, so each
     channel is mapped linearly onto 0-255 and rounded: (R - G + 255)/2, (R + G - 2B + 510)/4,
     (R + G + B)/3. A SIFT descriptor is normalised to unit length, so the scale of each
     channel does not matter, and it is built from gradients, so neither does the offset. On
     grayscale images O1 and O2 are flat (zero descriptors) and O3 is the image. The default,
     ``colour="gray"``, describes the grayscale image (colour batches converted to luma).

2. **Codebook**, learnt in ``fit`` from the *training* images only: a ``MiniBatchKMeans``
   with ``n_words`` clusters over at most ``max_descriptors`` of their descriptors, a
   uniform sample without replacement chosen by hashing each descriptor's global index
   with ``random_state`` (so it depends neither on ``chunk_size`` nor on ``n_jobs``).

3. **Encoding** in ``transform``: each descriptor votes for its nearest word; the image is
   the histogram of its words, normalised to unit L1 or L2 norm (``norm``). With
   ``spatial_pyramid=True`` the histograms of the whole image and of its four quadrants
   (a keypoint belongs to the quadrant that holds its centre) are concatenated -
   levels 0 and 1 of Lazebnik et al. (2006), unweighted - and the 5 * n_words vector is
   normalised as a whole. Descriptors of patches without any gradient (all zeros) are
   dropped, so a blank image, like any image without a descriptor, gives a zero vector.

References
----------
D. G. Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 60(2),
91-110, 2004, doi:10.1023/B:VISI.0000029664.99615.94.
G. Csurka, C. Dance, L. Fan, J. Willamowski and C. Bray, "Visual categorization with bags
of keypoints", ECCV Workshop on Statistical Learning in Computer Vision, 2004.
K. E. A. van de Sande, T. Gevers and C. G. M. Snoek, "Evaluating color descriptors for object
and scene recognition", IEEE TPAMI 32(9), 1582-1596, 2010, doi:10.1109/TPAMI.2009.154.
S. Lazebnik, C. Schmid and J. Ponce, "Beyond bags of features: spatial pyramid matching
for recognizing natural scene categories", CVPR 2006, doi:10.1109/CVPR.2006.68.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import cv2
import numpy as np
from sklearn.cluster import MiniBatchKMeans

from features import Extractor
from features._batch import ImageFeatureExtractor, check_bool, check_choice, check_int
from features.errors import ImageError, ParameterError

MODES = ("dense", "keypoints")
COLOURS = ("gray", "opponent")
NORMS = ("l1", "l2")
DESCRIPTOR_SIZE = 128


@dataclass
class Descriptors:
    """The descriptors of a chunk of images, with the image (in the chunk) and centre of each."""

    vectors: np.ndarray  # float32 (m, 128), or (m, 384) for opponent SIFT
    image: np.ndarray  # intp (m,)
    xy: np.ndarray  # float32 (m, 2), keypoint centre (x = column, y = row)


def dense_grid(height: int, width: int, step: int, size: int) -> list[cv2.KeyPoint]:
    """Upright keypoints of diameter ``size`` centred at ``size/2 + k*step`` on both axes."""
    xs = size / 2 + step * np.arange((width - size) // step + 1)
    ys = size / 2 + step * np.arange((height - size) // step + 1)
    return [cv2.KeyPoint(float(x), float(y), float(size), 0.0) for y in ys for x in xs]


def opponent_channels(images: np.ndarray) -> np.ndarray:
    """The opponent channels O1, O2, O3 of a uint8 RGB (n, H, W, 3) or grayscale (n, H, W) batch,
    each mapped linearly onto 0-255 and rounded: uint8 (3, n, H, W) (see the module docstring)."""
    rgb = images.astype(np.float32)
    if rgb.ndim == 3:  # gray: R = G = B
        rgb = np.repeat(rgb[..., None], 3, axis=3)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    channels = np.stack([(r - g + 255) / 2, (r + g - 2 * b + 510) / 4, (r + g + b) / 3])
    return np.rint(channels).astype(np.uint8)


def _keypoint_key(kp: cv2.KeyPoint) -> tuple:
    return kp.pt, kp.size, kp.angle, kp.octave


def _describe(sift, channels: list[np.ndarray], grid: list[cv2.KeyPoint] | None):
    """Keypoints and descriptors of one image given as 1 (gray) or 3 (opponent) uint8 channels:
    the keypoints are the grid, or those detected on the last channel (the intensity); a
    keypoint OpenCV drops on some channel is dropped on all, so the parts stay aligned."""
    if len(channels) == 1:
        return sift.detectAndCompute(channels[0], None) if grid is None else sift.compute(channels[0], grid)
    keypoints = grid if grid is not None else sift.detect(channels[-1], None)
    if not keypoints:
        return (), None
    described = [sift.compute(channel, keypoints) for channel in channels]
    if any(desc is None for _, desc in described):
        return (), None
    keys = [[_keypoint_key(kp) for kp in kps] for kps, _ in described]
    if keys[0] == keys[1] == keys[2]:  # the usual case: every channel kept every keypoint
        return described[-1][0], np.hstack([desc for _, desc in described])
    rows = [{_keypoint_key(kp): row for kp, row in zip(kps, desc)} for kps, desc in described]
    kept = [kp for kp in described[-1][0] if all(_keypoint_key(kp) in r for r in rows)]
    if not kept:
        return (), None
    return kept, np.stack([np.concatenate([r[_keypoint_key(kp)] for r in rows]) for kp in kept])


def extract_descriptors(images: np.ndarray, mode: str, step: int, size: int, colour: str = "gray") -> Descriptors:
    """SIFT descriptors of every image of a uint8 chunk: grayscale (n, H, W) with
    ``colour="gray"``; with ``colour="opponent"``, opponent SIFT of an RGB (n, H, W, 3) (or
    grayscale) chunk.

    Robust to what OpenCV may do: ``detectAndCompute`` returns ``None`` descriptors when it
    finds nothing, and ``compute`` may drop a keypoint or return one per extra orientation,
    so each descriptor is matched with the keypoint OpenCV returns with it. All-zero
    descriptors (patches without any gradient, e.g. blank background) are dropped: they
    carry no information and would otherwise all vote for one "blank" word.
    """
    sift = cv2.SIFT_create()
    opponent = colour == "opponent"
    dimension = DESCRIPTOR_SIZE * (3 if opponent else 1)
    grid = dense_grid(*images.shape[1:3], step, size) if mode == "dense" else None
    planes = opponent_channels(images) if opponent else images[None]
    vectors, owners, centres = [], [], []
    for i in range(len(images)):
        keypoints, desc = _describe(sift, list(planes[:, i]), grid)
        if desc is None or len(keypoints) == 0:
            continue
        informative = desc.any(axis=1)  # a patch without any gradient gives the zero vector
        if not informative.any():
            continue
        vectors.append(desc[informative])
        owners.append(np.full(int(informative.sum()), i, dtype=np.intp))
        centres.append(np.array([kp.pt for kp in keypoints], dtype=np.float32)[informative])
    if not vectors:
        return Descriptors(np.empty((0, dimension), np.float32), np.empty(0, np.intp), np.empty((0, 2), np.float32))
    return Descriptors(np.concatenate(vectors), np.concatenate(owners), np.concatenate(centres))


def _sample_keys(seed: int, index: np.ndarray) -> np.ndarray:
    """Pseudo-random uint64 key of each global descriptor index: SplitMix64 (Steele et al.
    2014) output number ``index + 1`` of the generator seeded with ``seed`` (arrays wrap mod 2**64)."""
    z = (index.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class SIFTFeatures(ImageFeatureExtractor):
    """Bag of visual words over dense or detected SIFT descriptors.

    See the module docstring for the method (Lowe 2004; Csurka et al. 2004).

    Parameters
    ----------
    mode : {"dense", "keypoints"}
    colour : {"gray", "opponent"}
        Describe the grayscale image (colour converted to luma), or opponent SIFT: the three
        opponent channels' descriptors, concatenated (colour data; see the module docstring).
    step, size : int >= 1
        Dense grid spacing and keypoint diameter in pixels (dense mode; images need
        H, W >= size).
    n_words : int >= 1
        Codebook size (k-means clusters).
    norm : {"l1", "l2"}
        Normalisation of each image's histogram.
    spatial_pyramid : bool
        Concatenate the whole-image histogram with the four quadrant histograms.
    random_state : int >= 0
        Seed of the descriptor sample and of the k-means.
    batch_size : int >= 1
        Mini-batch size of the k-means.
    max_descriptors : int >= 1
        At most this many training descriptors are clustered.
    n_jobs, chunk_size : int
        joblib workers and images per chunk (see ``features._batch``).

    Attributes
    ----------
    codebook_ : MiniBatchKMeans
        The visual words, fitted on training descriptors only.
    n_train_descriptors_ : int
        Number of descriptors the training images gave (before sampling).
    """

    def __init__(
        self,
        mode="dense",
        colour="gray",
        step=4,
        size=8,
        n_words=64,
        norm="l2",
        spatial_pyramid=False,
        random_state=0,
        batch_size=1024,
        max_descriptors=100000,
        n_jobs=1,
        chunk_size=2048,
    ):
        self.mode = mode
        self.colour = colour
        self.step = step
        self.size = size
        self.n_words = n_words
        self.norm = norm
        self.spatial_pyramid = spatial_pyramid
        self.random_state = random_state
        self.batch_size = batch_size
        self.max_descriptors = max_descriptors
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        check_choice(owner, "mode", self.mode, MODES)
        check_choice(owner, "colour", self.colour, COLOURS)
        check_int(owner, "step", self.step, 1)
        check_int(owner, "size", self.size, 1)
        check_int(owner, "n_words", self.n_words, 1)
        check_choice(owner, "norm", self.norm, NORMS)
        check_bool(owner, "spatial_pyramid", self.spatial_pyramid)
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, Integral) or not (
            0 <= self.random_state < 2**32
        ):
            raise ParameterError(
                f"{owner}: random_state={self.random_state!r} is invalid; expected an integer in [0, 2**32)"
            )
        check_int(owner, "batch_size", self.batch_size, 1)
        check_int(owner, "max_descriptors", self.max_descriptors, 1)

    def _min_image_size(self) -> tuple[tuple[int, int], str]:
        if self.mode == "dense":
            return (self.size, self.size), f"mode='dense' with size={self.size}"
        return (1, 1), "SIFT"

    @property
    def keeps_colour(self) -> bool:
        """Opponent SIFT takes RGB batches; grayscale SIFT has them converted to luma."""
        return self.colour == "opponent"

    def _descriptors(self, images: np.ndarray) -> Descriptors:
        return extract_descriptors(images, self.mode, int(self.step), int(self.size), self.colour)

    def _fit_images(self, images: np.ndarray) -> None:
        """Fit the codebook on a seeded uniform sample of the training descriptors."""
        limit, seed = int(self.max_descriptors), int(self.random_state)
        dimension = DESCRIPTOR_SIZE * (3 if self.colour == "opponent" else 1)
        sample, keys, index = np.empty((0, dimension), np.float32), np.empty(0, np.uint64), np.empty(0, np.int64)
        total = 0
        for _, chunk in self._chunks(images, self._descriptors):
            chunk_index = total + np.arange(len(chunk.vectors), dtype=np.int64)
            total += len(chunk.vectors)
            sample = np.concatenate([sample, chunk.vectors])
            index = np.concatenate([index, chunk_index])
            keys = np.concatenate([keys, _sample_keys(seed, chunk_index)])
            if len(sample) > limit:  # keep the `limit` smallest keys: a uniform sample
                keep = np.argpartition(keys, limit - 1)[:limit]
                sample, keys, index = sample[keep], keys[keep], index[keep]
        if len(sample) < self.n_words:
            raise ImageError(
                f"{type(self).__name__}: the training images gave {total} descriptors "
                f"but n_words={self.n_words} needs at least {self.n_words}"
            )
        order = np.argsort(index)  # the sample in extraction order: independent of chunking
        # compute_labels=False: the training labels are not needed, and computing them (plus
        # the default per-step inertia bookkeeping) dominated the fit time.
        self.codebook_ = MiniBatchKMeans(
            n_clusters=int(self.n_words), batch_size=int(self.batch_size), random_state=seed,
            compute_labels=False, max_no_improvement=5,
        ).fit(sample[order])
        self.n_train_descriptors_ = total

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        n, height, width = images.shape[:3]
        k = int(self.n_words)
        found = self._descriptors(images)
        regions = 5 if self.spatial_pyramid else 1
        hist = np.zeros((n, regions, k), dtype=np.float64)
        if len(found.vectors):
            words = self.codebook_.predict(found.vectors)
            np.add.at(hist, (found.image, 0, words), 1.0)
            if self.spatial_pyramid:
                quadrant = 1 + 2 * (found.xy[:, 1] >= height / 2) + (found.xy[:, 0] >= width / 2)
                np.add.at(hist, (found.image, quadrant, words), 1.0)
        hist = hist.reshape(n, regions * k)
        if self.norm == "l1":
            length = hist.sum(axis=1, keepdims=True)
        else:
            length = np.sqrt(np.einsum("ij,ij->i", hist, hist))[:, None]
        return np.divide(hist, length, out=np.zeros_like(hist), where=length > 0).astype(np.float32)


def draw(extractor: SIFTFeatures, image: np.ndarray, features: np.ndarray | None = None) -> dict:
    """``sift``: the dense grid the extractor describes beside the keypoints SIFT detects;
    ``opponent``: the three opponent channels described (only with ``colour="opponent"``);
    ``bovw``: the image's bag of visual words, its stored ``features`` or, from a fitted
    extractor, its transform (left out when there is neither). The registry's drawing hook,
    ``features.Extractor.draw``."""
    from features.extractors._sift_drawing import bovw_figure, opponent_figure, sift_figure

    figures = {"sift": sift_figure(image, int(extractor.step), int(extractor.size), extractor.mode)}
    if extractor.colour == "opponent":
        figures["opponent"] = opponent_figure(image)
    if features is None and hasattr(extractor, "codebook_"):
        features = extractor.transform(np.asarray(image)[None])[0]
    if features is not None:
        figures["bovw"] = bovw_figure(features, int(extractor.n_words), bool(extractor.spatial_pyramid))
    return figures


EXTRACTOR = Extractor(
    transformer=SIFTFeatures,
    citation=(
        'D. G. Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 60(2), 2004, '
        'doi:10.1023/B:VISI.0000029664.99615.94; G. Csurka et al., "Visual categorization with bags of '
        'keypoints", ECCV Workshop on Statistical Learning in Computer Vision, 2004; K. E. A. van de Sande, '
        'T. Gevers and C. G. M. Snoek, "Evaluating color descriptors for object and scene recognition", '
        "IEEE TPAMI 32(9), 2010, doi:10.1109/TPAMI.2009.154 (opponent SIFT, colour: opponent)"
    ),
    summary="bag of visual words over dense (or detected) SIFT descriptors, optionally opponent colour SIFT; "
            "codebook fitted on training images",
    draw=draw,
)

"""Single-layer unsupervised features (Coates, Lee & Ng 2011): filters learned by k-means on
whitened image patches, no backpropagation.

1. **Patches**: every ``patch_size`` x ``patch_size`` window (x 3 channels on RGB images),
   ``stride`` pixels apart, flattened in (row, column, channel) order, in the 0-255 pixel
   scale.
2. **Normalisation** of each patch's brightness and contrast: minus its mean, divided by
   ``sqrt(var + 10)`` (the unbiased variance, as MATLAB's ``var`` in the paper's code).
3. **ZCA whitening** ``w = (x - m) P`` with ``P = V diag(1 / sqrt(d + 0.1)) V^T`` from the
   eigen-decomposition ``V diag(d) V^T`` of the covariance of the normalised training
   patches and ``m`` their mean (epsilon 0.1 as in the paper's code).
4. **Codebook**, learnt in ``fit`` from the *training* images only: ``n_patches`` random
   patches (image ``i mod N`` for the i-th patch, as in the paper's code, at a position drawn
   from ``random_state``), normalised and whitened, clustered by ``MiniBatchKMeans`` into
   ``n_centroids`` centroids ``c_k`` (the learned filters).
5. **Triangle activation** of every patch: ``f_k = max(0, mean_j(z_j) - z_k)`` with
   ``z_k = ||w - c_k||``; about half of the ``f_k`` are zero (a sparse code).
6. **Sum pooling** over the four quadrants of the grid of windows (rows and columns split
   at ``ceil(n / 2)``, as ``round(n / 2)`` in the paper's code): ``4 * n_centroids``
   features, ordered top-left, top-right, bottom-left, bottom-right, ``n_centroids`` each.

Speed: steps 2-5 fold into one matrix product per image (the whitening and the constant
terms of the squared distance are precomputed into a ``(d + 1) x (n_centroids + d)``
matrix), followed by a handful of float32 passes over that image's ``windows x n_centroids``
activations, so the memory of a chunk stays a few MB whatever ``chunk_size`` is, and each
image's features do not depend on the chunk it belongs to.

Reference
---------
A. Coates, H. Lee and A. Y. Ng, "An Analysis of Single-Layer Networks in Unsupervised Feature
Learning", AISTATS 2011, PMLR 15:215-223 (77.9 % on CIFAR-10 with 1,600 centroids, 6x6
patches, stride 1, linear SVM).
"""
from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.cluster import MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from features import Extractor
from features._batch import ImageFeatureExtractor, check_int
from features.errors import ImageError, ParameterError

NORMALISATION_EPS = 10.0  # added to each patch's variance (0-255 scale), the paper's value
WHITENING_EPS = 0.1  # added to the covariance eigenvalues before 1/sqrt, the paper's code


def windows(images: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Every ``size`` x ``size`` window of a uint8 ``(n, H, W)`` or ``(n, H, W, C)`` batch,
    ``stride`` apart: a view ``(n, rows, cols, size, size[, C])``."""
    view = sliding_window_view(images, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return view if images.ndim == 3 else view.transpose(0, 1, 2, 4, 5, 3)


def normalise(patches: np.ndarray) -> np.ndarray:
    """Each row (a flattened patch, 0-255 scale) minus its mean, divided by
    ``sqrt(unbiased variance + 10)``: float32, a new array."""
    x = np.array(patches, dtype=np.float32)
    x -= x.mean(axis=1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x) / np.float32(max(x.shape[1] - 1, 1))
    x /= np.sqrt(var + np.float32(NORMALISATION_EPS))[:, None]
    return x


def zca_matrix(normalised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, ZCA matrix P) of normalised patches: ``(x - mean) @ P`` has covariance
    ``V diag(d / (d + 0.1)) V^T``, the identity on the directions of variance >> 0.1."""
    data = normalised.astype(np.float64)
    mean = data.mean(axis=0)
    eigenvalues, vectors = np.linalg.eigh(np.cov(data, rowvar=False))
    scale = 1.0 / np.sqrt(np.maximum(eigenvalues, 0.0) + WHITENING_EPS)
    return mean, (vectors * scale) @ vectors.T


def triangle(whitened: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``f_k = max(0, mean_j z_j - z_k)``, ``z_k`` the distance of each row of ``whitened`` to
    centroid ``k``: ``(m, n_centroids)`` (the reference formula; ``transform`` computes the same
    in float32 with the whitening folded in)."""
    z = np.sqrt(np.maximum(
        (whitened**2).sum(1)[:, None] + (centroids**2).sum(1)[None] - 2 * whitened @ centroids.T, 0))
    return np.maximum(z.mean(axis=1, keepdims=True) - z, 0)


def pool_quadrants(activations: np.ndarray) -> np.ndarray:
    """Sum of an ``(n, rows, cols, k)`` activation grid over its four quadrants (rows and
    columns split at ``ceil(rows / 2)``, ``ceil(cols / 2)``): ``(n, 4 * k)``, top-left,
    top-right, bottom-left, bottom-right."""
    n, rows, cols, k = activations.shape
    r, c = (rows + 1) // 2, (cols + 1) // 2
    quadrants = (activations[:, :r, :c], activations[:, :r, c:], activations[:, r:, :c], activations[:, r:, c:])
    return np.concatenate([q.sum(axis=(1, 2)) for q in quadrants], axis=1)


class KMeansFeatures(ImageFeatureExtractor):
    """Coates, Lee & Ng's (2011) single-layer network: normalised, ZCA-whitened patches,
    k-means centroids learnt on the training images, triangle activation and quadrant sum
    pooling (see the module docstring). RGB batches are kept in colour (``keeps_colour``).

    Parameters
    ----------
    n_centroids : int >= 1
        Number of k-means centroids (learned filters); ``4 * n_centroids`` features.
    patch_size : int >= 1
        Side of the square receptive field, pixels (6 in the paper).
    stride : int >= 1
        Pixels between windows when encoding (1 in the paper; 2 is ~3.5x faster).
    n_patches : int >= n_centroids
        Random training patches the whitening and k-means are fitted on (400,000 in the paper).
    random_state : int in [0, 2**32)
        Seed of the patch sample and of k-means.
    n_jobs, chunk_size : int
        joblib workers and images per chunk (see ``features._batch``).
    """

    keeps_colour = True

    def __init__(self, n_centroids=400, patch_size=6, stride=1, n_patches=100_000, random_state=0,
                 n_jobs=1, chunk_size=2048):
        self.n_centroids = n_centroids
        self.patch_size = patch_size
        self.stride = stride
        self.n_patches = n_patches
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    def _check_params(self) -> None:
        super()._check_params()
        owner = type(self).__name__
        k = check_int(owner, "n_centroids", self.n_centroids, 1)
        check_int(owner, "patch_size", self.patch_size, 1)
        check_int(owner, "stride", self.stride, 1)
        check_int(owner, "n_patches", self.n_patches, k)
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, Integral) or not (
            0 <= self.random_state < 2**32
        ):
            raise ParameterError(
                f"{owner}: random_state={self.random_state!r} is invalid; expected an integer in [0, 2**32)"
            )

    def _min_image_size(self) -> tuple[tuple[int, int], str]:
        side = int(self.patch_size) + int(self.stride)  # two windows per axis: four quadrants
        return (side, side), f"patch_size={self.patch_size} and stride={self.stride}"

    def sample_patches(self, images: np.ndarray) -> np.ndarray:
        """The ``n_patches`` random training patches, flattened, uint8: the i-th from image
        ``i mod N`` at a position drawn from ``random_state``."""
        size, count = int(self.patch_size), int(self.n_patches)
        rng = np.random.default_rng(int(self.random_state))
        rows = rng.integers(0, images.shape[1] - size + 1, count)
        cols = rng.integers(0, images.shape[2] - size + 1, count)
        owner = np.arange(count) % len(images)
        view = windows(images, size, 1)
        return view[owner, rows, cols].reshape(count, -1)

    def _fit_images(self, images: np.ndarray) -> None:
        normalised = normalise(self.sample_patches(images))
        self.mean_, self.zca_ = zca_matrix(normalised)
        whitened = ((normalised - self.mean_) @ self.zca_).astype(np.float32)
        with warnings.catch_warnings():  # fewer distinct patches than centroids: duplicates, harmless
            warnings.simplefilter("ignore", ConvergenceWarning)
            kmeans = MiniBatchKMeans(n_clusters=int(self.n_centroids), batch_size=4096, n_init=1,
                                     random_state=int(self.random_state), compute_labels=False,
                                     max_no_improvement=10).fit(whitened)
        self.centroids_ = kmeans.cluster_centers_.astype(np.float32)
        self.encoder_ = self._encoder()

    def _encoder(self) -> np.ndarray:
        """float32 ``(d + 1, k + d)`` matrix E with ``[x, 1] @ E = [||c_k||^2 - 2 w.c_k, w]`` for a
        normalised patch x and its whitened w = (x - mean) P."""
        p, c = self.zca_, self.centroids_.astype(np.float64)
        bias = self.mean_ @ p
        top = np.hstack([-2 * p @ c.T, p])
        bottom = np.concatenate([(c**2).sum(1) + 2 * c @ bias, -bias])
        return np.vstack([top, bottom]).astype(np.float32)

    def _activations(self, images: np.ndarray):
        """Yield the triangle activations of each image of a validated batch, float32
        ``(rows, cols, n_centroids)``, one image at a time (bounded memory, and each image's
        values independent of the chunk it belongs to)."""
        k = int(self.n_centroids)
        view = windows(images, int(self.patch_size), int(self.stride))
        rows, cols = view.shape[1:3]
        augmented = np.ones((rows * cols, self.encoder_.shape[0]), dtype=np.float32)
        for patches in view:
            augmented[:, :-1] = normalise(patches.reshape(rows * cols, -1))
            product = augmented @ self.encoder_  # [||c||^2 - 2 w.c, w]
            z = product[:, :k]
            w = product[:, k:]
            z += np.einsum("ij,ij->i", w, w)[:, None]
            np.maximum(z, 0, out=z)  # rounding can leave a tiny negative squared distance
            np.sqrt(z, out=z)
            np.subtract(z.mean(axis=1, keepdims=True), z, out=z)
            np.maximum(z, 0, out=z)
            yield z.reshape(rows, cols, k)

    def activation_maps(self, X) -> np.ndarray:
        """The triangle activations of every window of a batch of images, before pooling:
        float32 ``(n, rows, cols, n_centroids)`` (all in memory: for a few images)."""
        check_is_fitted(self, "centroids_")
        images = self._check_images(X)
        if images.shape[1:] != self.image_shape_:
            got, fitted = ("x".join(map(str, shape)) for shape in (images.shape[1:], self.image_shape_))
            raise ImageError(f"{type(self).__name__}: images are {got} but the extractor was fitted on {fitted}")
        return np.stack(list(self._activations(images)))

    def transform(self, X) -> np.ndarray:
        """Features of a batch of images, float32 ``(N, 4 * n_centroids)``. The per-image matrix
        products run on one BLAS thread each: the parallelism is ``n_jobs`` over chunks (BLAS
        threads inside joblib threads oversubscribed the cores and halved the throughput)."""
        with threadpool_limits(limits=1, user_api="blas"):
            return super().transform(X)

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        return np.concatenate([pool_quadrants(a[None]) for a in self._activations(images)]).astype(np.float32)


def draw(extractor: KMeansFeatures, image: np.ndarray, features: np.ndarray | None = None) -> dict:
    """``kmeans``: the receptive field and the pooling quadrants on the image; with a fitted
    extractor also ``kmeans_filters``, the learned centroids as image patches (un-whitened for
    display), and ``kmeans_maps``, the activation maps of the centroids most active on the image.
    The registry's drawing hook, ``features.Extractor.draw``."""
    from features.extractors._kmeans_drawing import activation_figure, centroid_figure, layout_figure

    figures = {"kmeans": layout_figure(extractor, image)}
    if hasattr(extractor, "centroids_"):
        figures |= {"kmeans_filters": centroid_figure(extractor), "kmeans_maps": activation_figure(extractor, image)}
    return figures


EXTRACTOR = Extractor(
    transformer=KMeansFeatures,
    citation=(
        'A. Coates, H. Lee and A. Y. Ng, "An Analysis of Single-Layer Networks in Unsupervised Feature '
        'Learning", AISTATS 2011, PMLR 15:215-223'
    ),
    summary="filters learnt by k-means on whitened training patches, triangle code, quadrant pooling",
    draw=draw,
)

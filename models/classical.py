"""Classical classifiers on handcrafted features: pipeline factory, search, size.

The classifiers themselves are registered in :mod:`models.classifiers`. Importing this
module does not import scikit-learn: every function imports what it needs, so the CLI
starts fast.

Every classifier is wrapped in a :class:`sklearn.pipeline.Pipeline` with the steps
``scale`` (StandardScaler), optional ``pca`` (PCA) and ``clf`` (the estimator).
:func:`param_count` reports the fitted pipeline's size in the same column as the CNNs'
parameter count; its counting rules are in :data:`PARAM_COUNT_DEFINITIONS`.
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Mapping, Sequence

from models import classifiers
from models.errors import InputError, ParameterError

PARAM_COUNT_DEFINITIONS: dict[str, str] = {
    "scale": "StandardScaler: mean_ + scale_ = 2 x input dim",
    "pca": "PCA: components_ (n_components x input dim) + mean_ (input dim); explained variance not counted",
    "linear_svm": "LinearSVC: coef_.size + intercept_.size",
    "logreg": "LogisticRegression: coef_.size + intercept_.size",
    "rbf_svm": "SVC: support vectors x dim + dual_coef_.size + intercept_.size",
    "random_forest": (
        "RandomForestClassifier: sum over trees of 2 per internal node (split feature, threshold) "
        "+ n_outputs x n_classes per leaf (class-value vector)"
    ),
    "knn": "KNeighborsClassifier: stored training samples x dim (n_samples_fit_ x n_features_in_)",
}


SCALINGS = ("standard", "none")


def _allowed(names) -> str:
    """The comma-separated, sorted list used in every error message."""
    return ", ".join(sorted(names))


def _check_pca(pca: Any) -> None:
    """Accept None, an int >= 1 (components) or a float in (0, 1) (variance kept)."""
    if pca is None:
        return
    if isinstance(pca, Integral) and not isinstance(pca, bool) and pca >= 1:
        return
    if isinstance(pca, Real) and not isinstance(pca, (bool, Integral)) and 0 < pca < 1:
        return
    raise ParameterError(
        f"pca must be null, an int >= 1 (components) or a float in (0, 1) (variance kept); got {pca!r}"
    )


def _build_estimator(name: str, random_state: int, hyperparams: Mapping[str, Any]):
    """Instantiate the registered estimator, validating hyperparameter names and values."""
    from sklearn.utils._param_validation import InvalidParameterError

    spec = classifiers.get(name)
    cls = spec.load()
    allowed = set(cls().get_params()) - set(spec.fixed)
    for key in hyperparams:
        if key not in allowed:
            raise ParameterError(
                f"{spec.load().__name__}: unknown hyperparameter {key!r}; allowed: {_allowed(allowed)}"
            )
    params = {"random_state": random_state} if "random_state" in allowed else {}
    params.update(hyperparams)
    params.update(spec.fixed)
    estimator = cls(**params)
    validate = getattr(estimator, "_validate_params", None)
    if validate is not None:
        try:
            validate()
        except InvalidParameterError as exc:
            message = " ".join(str(exc).split())
            raise ParameterError(message) from None
    return estimator


def make_classifier(name: str, *, pca: int | float | None = None, scale: str = "standard",
                    random_state: int = 0, **hyperparams):
    """Build the unfitted pipeline ``scale`` -> [``pca``] -> ``clf`` for a registered classifier.

    ``hyperparams`` are the estimator's own constructor arguments (e.g. ``C``/``gamma`` for
    ``rbf_svm``); their names and values are checked now, so a typo in params.yaml fails
    before any fitting. ``random_state`` is passed to PCA and to every estimator that takes
    one. ``pca`` is an int >= 1 (number of components) or a float in (0, 1) (fraction of
    variance kept); ``None`` leaves the step out. ``scale`` is ``"standard"`` (StandardScaler:
    every dimension to zero mean and unit variance) or ``"none"`` (the step passes the features
    through, for features whose dimensions are already on one scale: standardising HOG or pixel
    dimensions that barely vary on the training images magnifies their noise).

    Raises:
        ParameterError: unknown classifier, unknown hyperparameter, invalid value, bad ``pca``
            or ``scale``.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    _check_pca(pca)
    if scale not in SCALINGS:
        raise ParameterError(f"scale must be one of {', '.join(SCALINGS)}; got {scale!r}")
    steps = [("scale", StandardScaler() if scale == "standard" else "passthrough")]
    if pca is not None:
        from sklearn.decomposition import PCA  # 0.15 s of imports a stage without PCA skips

        steps.append(("pca", PCA(n_components=pca, random_state=random_state)))
    steps.append(("clf", _build_estimator(name, random_state, hyperparams)))
    return Pipeline(steps)


def predefined_split(n_train: int, n_val: int):
    """A single split whose fit part is the first ``n_train`` rows and whose score part is the next ``n_val``.

    Use it with :func:`make_search` on ``concatenate([X_train, X_val])``; the test set is
    never passed to the search.
    """
    import numpy as np
    from sklearn.model_selection import PredefinedSplit

    if n_train < 1 or n_val < 1:
        raise ParameterError(f"hyperparameter search needs n_train >= 1 and n_val >= 1; got {n_train}, {n_val}")
    return PredefinedSplit(np.concatenate([np.full(n_train, -1), np.zeros(n_val, dtype=int)]))


def make_search(pipeline, grid: Mapping[str, Sequence[Any]], cv=3, n_jobs: int = 1):
    """A GridSearchCV over the pipeline's ``clf`` hyperparameters.

    ``grid`` maps estimator hyperparameter names (without the ``clf__`` prefix) to a
    non-empty list of candidate values. ``cv`` is a fold count or a splitter, typically
    :func:`predefined_split`. The best candidate is refitted on all the data passed to
    ``fit``.

    Raises:
        ParameterError: an empty grid, an unknown hyperparameter or an empty/non-list value.
    """
    from sklearn.model_selection import GridSearchCV

    allowed = set(pipeline.named_steps["clf"].get_params())
    if not grid:
        raise ParameterError(f"hyperparameter grid is empty; allowed keys: {_allowed(allowed)}")
    for key, values in grid.items():
        if key not in allowed:
            raise ParameterError(f"search grid: unknown hyperparameter {key!r}; allowed: {_allowed(allowed)}")
        if not isinstance(values, (list, tuple)) or not values:
            raise ParameterError(f"search grid: {key!r} must be a non-empty list of values; got {values!r}")
    param_grid = {f"clf__{key}": list(values) for key, values in grid.items()}
    return GridSearchCV(pipeline, param_grid, cv=cv, n_jobs=n_jobs)


# --- model files: skops, which loads without running arbitrary code ---------------------------

# modules whose types a model file of this project may hold: scikit-learn's estimators, numpy and
# scipy values, and this project's extractors (features/). Anything else in a file is refused.
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "features.")


def dumps(obj) -> bytes:
    """``obj`` serialised with skops (the bytes of a ``.skops`` file)."""
    import skops.io as sio

    return sio.dumps(obj)


def load_skops(path):
    """An object from a ``.skops`` file this project wrote (an extractor, a model).

    skops refuses to build any type it is not told to trust; trusted here are the types of
    :data:`TRUSTED_MODULES`, so a file holding anything else (e.g. a type from an unknown
    package) is refused instead of run.

    Raises:
        InputError: the file is missing, not a skops file, or holds a type outside
            :data:`TRUSTED_MODULES` (named).
    """
    from pathlib import Path
    from zipfile import BadZipFile

    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    try:
        data = path.read_bytes()
        untrusted = sio.get_untrusted_types(data=data)
    except (BadZipFile, KeyError, ValueError) as exc:
        raise InputError(f"{path}: not a skops model file ({type(exc).__name__})") from None
    refused = [t for t in untrusted if not t.startswith(TRUSTED_MODULES)]
    if refused:
        raise InputError(f"{path}: holds types this project never writes: {_allowed(refused)}; not loaded")
    return sio.loads(data, trusted=untrusted)


def image_pipeline(extractor, fitted_pipeline):
    """One scikit-learn Pipeline from image batch to label: ``features`` (the fitted extractor of
    the features stage), then the fitted ``scale`` / [``pca``] / ``clf`` steps. Nothing is refitted:
    the steps are the fitted objects themselves, so it predicts exactly what they predict on the
    extractor's matrices."""
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", extractor), *fitted_pipeline.steps])


def load_pipeline(path):
    """The image-in classical model ``artifacts/classical/<feature>-<classifier>.skops``.

    Contract: ``model.predict(images)`` takes a uint8 image batch, shape ``(n, H, W)`` or
    ``(n, H, W, C)`` with C = 1 or 3 (RGB), exactly as ``prepare``'s loader produces it at
    params.yaml ``data.image_size`` x ``data.image_size`` and ``data.channels`` (the ``x_<part>``
    arrays of ``data/prepared/split.npz``, deskewed when ``data.deskew`` is on), and returns the
    predicted class indices ``(n,)`` (int64). Class ``i`` is ``class_names[i]`` of
    ``data/prepared/manifest.json`` (or of the split file). ``predict_proba`` (logreg, random
    forest, kNN) or ``decision_function`` (the SVMs) give per-class scores in the same column
    order. Images of another size are refused by the extractor with a one-line
    ``features.errors.ImageError``.

    Loading runs no code from the file (skops, :func:`load_skops`).
    """
    model = load_skops(path)
    if not hasattr(model, "steps") or model.steps[0][0] != "features":
        raise InputError(f"{path}: not an image-in pipeline (first step is not 'features'); "
                         f"rerun its train_classical stage")
    return model


def _forest_count(forest) -> int:
    """2 per internal node (feature, threshold) + n_outputs x n_classes per leaf, over all trees."""
    total = 0
    for tree in forest.estimators_:
        t = tree.tree_
        n_leaves = int((t.children_left == -1).sum())
        values_per_leaf = t.value.shape[1] * t.value.shape[2]
        total += 2 * (t.node_count - n_leaves) + values_per_leaf * n_leaves
    return total


def _step_count(step) -> int:
    """Learned numbers one fitted pipeline step needs at predict time."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    if isinstance(step, StandardScaler):
        return step.mean_.size + step.scale_.size
    if isinstance(step, PCA):
        return step.components_.size + step.mean_.size
    if isinstance(step, (LinearSVC, LogisticRegression)):
        return step.coef_.size + step.intercept_.size
    if isinstance(step, SVC):
        return step.support_vectors_.size + step.dual_coef_.size + step.intercept_.size
    if isinstance(step, RandomForestClassifier):
        return _forest_count(step)
    if isinstance(step, KNeighborsClassifier):
        return step.n_samples_fit_ * step.n_features_in_
    raise TypeError(f"param_count: no counting rule for {type(step).__name__}")


def param_count(fitted_pipeline) -> int:
    """Learned numbers needed at predict time, summed over the fitted pipeline's steps.

    This is the classical counterpart of a CNN's parameter count. Per step (see
    :data:`PARAM_COUNT_DEFINITIONS`):

    * StandardScaler: ``mean_`` + ``scale_`` (2 x input dim).
    * PCA: ``components_`` + ``mean_``; explained variance is not used at predict time.
    * LinearSVC, LogisticRegression: ``coef_.size + intercept_.size``.
    * SVC: support vectors x dim + ``dual_coef_.size`` + ``intercept_.size``.
    * RandomForestClassifier: for every tree, each internal node stores a split feature
      and a threshold (2 numbers) and each leaf stores its class-value vector
      (n_outputs x n_classes numbers); children pointers are structure, not counted.
    * KNeighborsClassifier: the stored training samples, n_samples x dim.

    Raises:
        TypeError: a step whose type has no counting rule.
    """
    return int(sum(_step_count(step) for _, step in fitted_pipeline.steps if step != "passthrough"))


def svc_one_pass(clf: Any, x: Any) -> tuple[Any, Any] | None:
    """``(clf.predict(x), clf.decision_function(x))`` of a fitted libsvm classifier from ONE kernel pass.

    An SVC's ``predict`` and ``decision_function`` each evaluate the kernel between every image
    and every support vector -- on 10,000 test images and 20,000 support vectors that is most of
    the stage's time, and asking for both doubled it. Both follow from the one-vs-one decision
    values (``decision_function_shape="ovo"``): libsvm's prediction is the majority vote of
    the pairs (class i wins pair (i, j) when its value is > 0; ties go to the lower class
    index), and scikit-learn's one-vs-rest shape is those votes plus the summed confidences
    squashed into (-1/3, 1/3) (``sklearn.utils.multiclass._ovr_decision_function``).

    Returns ``None`` where that shortcut does not hold (not an SVC/NuSVC, ``probability=True``,
    ``break_ties=True``): call ``predict`` and the scores separately then.
    """
    import numpy as np
    from sklearn.svm import SVC, NuSVC
    from sklearn.utils.multiclass import _ovr_decision_function

    if not isinstance(clf, (SVC, NuSVC)) or hasattr(clf, "predict_proba") or clf.break_ties:
        return None
    classes = np.asarray(clf.classes_)
    shape = clf.decision_function_shape
    try:
        clf.decision_function_shape = "ovo"
        ovo = np.asarray(clf.decision_function(x), dtype=np.float64)
    finally:
        clf.decision_function_shape = shape
    if len(classes) == 2:  # scikit-learn returns minus libsvm's value, positive for classes_[1]
        return classes[(ovo >= 0).astype(int)], ovo
    n = len(classes)
    votes = np.zeros((len(ovo), n), dtype=np.int64)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for k, (i, j) in enumerate(pairs):
        wins_i = ovo[:, k] > 0
        votes[:, i] += wins_i
        votes[:, j] += ~wins_i
    labels = classes[votes.argmax(axis=1)]
    scores = ovo if shape == "ovo" else _ovr_decision_function(ovo < 0, -ovo, n)
    return labels, scores

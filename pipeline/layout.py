"""Where every stage's output lives, and the model id: one place for each of these facts.

Paths are relative to the project root (the stages run there, as DVC runs them); dvc.yaml
names the same files. Nothing here reads or writes a file, and this module imports no other
``pipeline`` module, so any module may use it.

=====================================  =============================================
``data/prepared/split.npz``             the prepared images (``prepare``)
``data/prepared/manifest.json``         its counts, class names and SHA-256
``data/features/<name>.npz``            one extractor's matrices (``features@<name>``)
``artifacts/features/<name>.skops``     the fitted extractor
``metrics/features/<name>.json``        its dimension and timings
``artifacts/classical/<id>.skops``      a classical model: image-in scikit-learn pipeline
``artifacts/cnn/<arch>.keras``          a CNN
``metrics/{classical,cnn}/<id>.json``   a model's scores (``.run.json``: run-dependent values)
``plots/{confusion,per_class}/<id>.*``  its confusion rows/matrix, per-class scores
``plots/history/<arch>.csv``            a CNN's per-epoch history
``predictions/<id>/<part>.csv``         its per-image predictions on val and test
``curves/<fraction>.json``              a learning-curve point (``learning_curve@<fraction>``)
``code_digests/<stage>[/<item>].txt``   the SHA-256 of each project file a stage runs (``code_digests``)
``reports/...``                         ``compare`` and ``explain`` (``reports/curve/``: the learning curve)
=====================================  =============================================

A model id is ``<feature>-<classifier>`` for a classical model (``hog-rbf_svm``) and the
architecture's name for a CNN (``lenet5``): architecture names are module names, which have
no hyphen, so the id alone tells the approach (:func:`approach_of`).
"""
from __future__ import annotations

from pathlib import Path

PREPARED_DIR = Path("data/prepared")
SPLIT = PREPARED_DIR / "split.npz"
MANIFEST = PREPARED_DIR / "manifest.json"

FEATURES_DIR = Path("data/features")
EXTRACTORS_DIR = Path("artifacts/features")
FEATURE_METRICS_DIR = Path("metrics/features")

CLASSICAL_MODELS_DIR = Path("artifacts/classical")
CNN_MODELS_DIR = Path("artifacts/cnn")
METRICS_DIRS = {"classical": Path("metrics/classical"), "deep": Path("metrics/cnn")}
CONFUSION_DIR = Path("plots/confusion")
PER_CLASS_DIR = Path("plots/per_class")
HISTORY_DIR = Path("plots/history")
PREDICTIONS_DIR = Path("predictions")
PARTS = ("val", "test")  # the split parts whose per-image predictions are kept

REPORTS_DIR = Path("reports")
PLOTS_DIR = REPORTS_DIR / "plots"
BUDGET_CURVE_CSV = PLOTS_DIR / "budget_curve.csv"  # the budget curve's points, beside its PNG
SUMMARY = REPORTS_DIR / "summary.json"
LEADERBOARD = REPORTS_DIR / "leaderboard.csv"
EXPLAIN_DIR = REPORTS_DIR / "explain"
INDEX = REPORTS_DIR / "index.html"
VISUALIZE_DIR = REPORTS_DIR / "visualize"
CURVES_DIR = Path("curves")
CURVE_REPORT_DIR = REPORTS_DIR / "curve"
CURVE_PLAN = REPORTS_DIR / "curve_plan.json"  # which models the learning curve follows (pipeline/curve_plan.py)
CODE_DIGESTS_DIR = Path("code_digests")


def model_id(feature: str, classifier: str) -> str:
    """The id of the classical model ``classifier`` on ``feature`` (``hog-rbf_svm``)."""
    return f"{feature}-{classifier}"


def split_model_id(model: str) -> tuple[str, str]:
    """``(feature, classifier)`` of a classical model id (the inverse of :func:`model_id`)."""
    feature, _, classifier = model.partition("-")
    return feature, classifier


def approach_of(model: str) -> str:
    """``classical`` for a ``<feature>-<classifier>`` id, else ``deep``."""
    return "classical" if "-" in model else "deep"


def stage_for(approach: str, model: str) -> str:
    """The DVC stage that writes a model's files (``train_classical@hog-rbf_svm``)."""
    return f"train_classical@{model}" if approach == "classical" else f"train_cnn@{model}"


def features_path(name: str) -> Path:
    return FEATURES_DIR / f"{name}.npz"


def extractor_path(name: str) -> Path:
    """``artifacts/features/<name>.skops``: the extractor fitted on the training images."""
    return EXTRACTORS_DIR / f"{name}.skops"


def feature_metrics_path(name: str) -> Path:
    return FEATURE_METRICS_DIR / f"{name}.json"


def classical_model_path(model: str) -> Path:
    return CLASSICAL_MODELS_DIR / f"{model}.skops"


def cnn_model_path(arch: str) -> Path:
    return CNN_MODELS_DIR / f"{arch}.keras"


def scores_path(approach: str, model: str) -> Path:
    return METRICS_DIRS[approach] / f"{model}.json"


def run_info_path(approach: str, model: str) -> Path:
    return METRICS_DIRS[approach] / f"{model}.run.json"


def confusion_csv(model: str) -> Path:
    return CONFUSION_DIR / f"{model}.csv"


def confusion_png(model: str) -> Path:
    return CONFUSION_DIR / f"{model}.png"


def per_class_csv(model: str) -> Path:
    return PER_CLASS_DIR / f"{model}.csv"


def history_path(arch: str) -> Path:
    return HISTORY_DIR / f"{arch}.csv"


def predictions_path(model: str, part: str) -> Path:
    """``predictions/<model id>/<part>.csv``; both approaches share the folder."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}; got {part!r}")
    return PREDICTIONS_DIR / model / f"{part}.csv"


def curve_point_path(fraction: str) -> Path:
    """``curves/<fraction>.json``: ``fraction`` as the stage's command line spells it (dvc.yaml's item)."""
    return CURVES_DIR / f"{fraction}.json"


def code_digest_path(unit: str) -> Path:
    """``code_digests/<stage>.txt``, or ``code_digests/<stage>/<item>.txt`` for a stage whose item
    names a component (``features@hog`` -> ``code_digests/features/hog.txt``)."""
    stage, _, item = unit.partition("@")
    return CODE_DIGESTS_DIR / stage / f"{item}.txt" if item else CODE_DIGESTS_DIR / f"{stage}.txt"


def plot_path(name: str) -> Path:
    """``reports/plots/<name>.png``: one of ``compare``'s plots."""
    return PLOTS_DIR / f"{name}.png"


def find_repo_root(start: str | Path | None = None) -> Path:
    """The project root, also from inside ``dvc exp run --temp``'s copy under .dvc/tmp/exps.

    DVC runs queued/temp experiments in a throwaway copy of the repo; anything that must
    outlive the experiment (the MLflow store) has to point at the original root.
    """
    here = Path(start or Path.cwd()).resolve()
    parts = here.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").is_file() or (candidate / ".dvc").is_dir():
            return candidate
    return here

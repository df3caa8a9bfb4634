"""The classifier registry: the scikit-learn estimators the classical side may train.

Importing this module does not import scikit-learn: an entry names its class by dotted
path and :meth:`Classifier.load` imports it on demand. Adding a classifier is one entry
here plus its params.yaml sections (``classical.<name>``, optionally ``classical.grid.<name>``);
:mod:`models.classical` builds, searches and sizes it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from models.errors import ParameterError


@dataclass(frozen=True)
class Classifier:
    """One registered estimator.

    Attributes:
        class_path: dotted path of the scikit-learn class (``sklearn.svm.SVC``).
        citation: the method's paper, short form.
        summary: one line on what the classifier does.
        fixed: constructor arguments it always gets (not settable from params.yaml).
        stochastic: whether fitting depends on ``random_state`` (then params.yaml
            ``evaluation.repeats`` retrains it with that many seeds); a deterministic
            estimator is trained once.
    """

    class_path: str
    citation: str
    summary: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    stochastic: bool = False

    def load(self) -> type:
        """Import and return the estimator class."""
        module_name, _, class_name = self.class_path.rpartition(".")
        return getattr(importlib.import_module(module_name), class_name)


CLASSIFIERS: dict[str, Classifier] = {
    "knn": Classifier(
        "sklearn.neighbors.KNeighborsClassifier", "Cover & Hart 1967",
        "k nearest neighbours: majority vote of the closest training samples"),
    "linear_svm": Classifier(
        "sklearn.svm.LinearSVC", "Cortes & Vapnik 1995; Fan et al. 2008 (LIBLINEAR)",
        "linear support vector machine, one-vs-rest",
        stochastic=True),  # LIBLINEAR's dual coordinate descent visits the samples in random order
    "logreg": Classifier(
        "sklearn.linear_model.LogisticRegression", "Cox 1958",
        "multinomial logistic regression (softmax over linear scores)"),
    "random_forest": Classifier(
        "sklearn.ensemble.RandomForestClassifier", "Breiman 2001",
        "random forest: bagged decision trees on random feature subsets",
        stochastic=True),
    "rbf_svm": Classifier(
        "sklearn.svm.SVC", "Cortes & Vapnik 1995; Chang & Lin 2011 (LIBSVM)",
        "kernel support vector machine with a Gaussian (RBF) kernel, one-vs-one",
        fixed={"kernel": "rbf"}),
}


def names() -> tuple[str, ...]:
    """The registered classifiers, sorted."""
    return tuple(sorted(CLASSIFIERS))


def check_name(name: str) -> str:
    """``name`` if it is a registered classifier: the one check of a classifier name, which
    params.yaml's config, the CLI and the stages call.

    Raises:
        ParameterError: an unknown name; the message lists the registered ones.
    """
    if not isinstance(name, str) or name not in CLASSIFIERS:
        raise ParameterError(f"unknown classifier {name!r}; allowed: {', '.join(names())}")
    return name


def get(name: str) -> Classifier:
    """The registry entry ``name`` (:func:`check_name` first)."""
    return CLASSIFIERS[check_name(name)]

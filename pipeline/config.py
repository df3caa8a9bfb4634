"""params.yaml -> typed, validated configuration (pydantic v2, strict types, no unknown keys).

The configuration has the file's shape: ``cfg.cnn.alexnet.train.epochs`` is params.yaml's
``cnn.alexnet.train.epochs``, ``cfg.features.hog`` its ``features.hog``. Every mistake becomes
one :class:`ConfigError` line naming the key, the bad value and what is allowed, e.g.
``params.yaml: data.image_size = 4: must be an integer >= 8`` (:mod:`pipeline.config_errors`).

Loading checks the pipeline's own settings, and every component name (the names lists and
the component sections' keys) with the registries' own checks (``features.check_extractor_name``,
``models.classifiers.check_name``, ``models.architectures.check_name``), which import no
component. What is inside a component's section (``features.hog``, ``classical.rbf_svm``,
the architecture's arguments in ``cnn.alexnet``) and the training vocabulary
(``cnn.mixed_precision``, ``cnn.lr_schedule``) is checked by the component itself when the
stage that runs it builds it, inside :func:`component_section`. This module imports no
component code, so editing a component reruns only its stages.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError

from pipeline import errors
from pipeline.config_errors import error_line, moved_key
from pipeline.config_schema import (DATASETS, AugmentConfig, BatchSize, CurveConfig, EpochSetting, EpochsByData,
                                    Fraction, LearningRate, NameList, Section, Strict, WithComponents, architectures,
                                    classifiers, extractors, name_list, none_is_empty, nullable)
from pipeline.errors import ConfigError


class MlflowConfig(Strict):
    experiment: Annotated[str, Field(min_length=1)] = "classic-vs-deep"


class DataConfig(Strict):
    dataset: Literal[DATASETS]
    path: Annotated[str, Field(min_length=1)] | None = None
    test_path: Annotated[str, Field(min_length=1)] | None = None  # folder: the test split's own class folders
    image_size: Annotated[int, Field(ge=8, le=1024)] | None  # None keeps the native size
    channels: Literal[1, 3] = 1
    val_fraction: Fraction = 0.15
    test_fraction: Fraction = 0.2  # only for datasets without an official test split or test_path
    limit_per_class: Annotated[int, Field(ge=3)] | None = None
    deskew: bool = False  # pipeline/preprocessing.py, after resizing, for every split and model
    max_pixels: Annotated[int, Field(ge=1)] = 100_000_000  # pipeline/datasets.py checks each file's header


class FeaturesConfig(WithComponents):
    """``features``: the extractors to run, their shared settings, and ``features.<name>`` each."""

    registry: ClassVar = extractors
    __pydantic_extra__: dict[str, Section] = Field(init=False)
    names: Annotated[NameList, name_list(extractors)]
    n_jobs: Any = -1  # checked by the extractors (features/_batch.py), which take it
    chunk_size: Any = 2048  # likewise


class ClassifierGrid(WithComponents):
    """``classical.grid``: ``classical.grid.<classifier>`` lists (models.classical.make_search)."""

    registry: ClassVar = classifiers
    __pydantic_extra__: dict[str, Section] = Field(init=False)


class ClassicalConfig(WithComponents):
    """``classical``: the classifiers to train, shared settings, and ``classical.<name>`` each."""

    registry: ClassVar = classifiers
    __pydantic_extra__: dict[str, Section] = Field(init=False)
    classifiers: Annotated[NameList, name_list(classifiers)]
    pca: Any = None  # checked by models.classical.make_classifier
    scale: Literal["standard", "none"] = "standard"  # models.classical.SCALINGS
    search: bool = False
    grid: Annotated[ClassifierGrid, BeforeValidator(none_is_empty)] = ClassifierGrid()


class TrainOverrides(Strict):
    """``cnn.<arch>.train``: this architecture's training settings; null = the shared ``cnn`` one.
    ``epochs`` here and in ``cnn`` may depend on the data (``{grayscale: 4, colour: 16}``:
    :class:`EpochsByData`)."""

    epochs: EpochSetting | None = None
    batch_size: BatchSize | None = None
    learning_rate: LearningRate | None = None


class ArchSection(Strict):
    """``cnn.<arch>``: the architecture's own arguments (checked by it) and its ``train`` overrides."""

    model_config = ConfigDict(extra="allow")
    train: Annotated[TrainOverrides, BeforeValidator(none_is_empty)] = TrainOverrides()

    @classmethod
    def _is_component(cls, key: str) -> bool:
        return True  # an argument of the architecture, which checks it

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of the architecture's spec function."""
        return dict(self.model_extra or {})


class Training(NamedTuple):
    """What one architecture trains with, after its ``cnn.<arch>.train`` overrides."""

    epochs: int
    batch_size: int
    learning_rate: float


class CnnConfig(WithComponents):
    """``cnn``: the architectures to train, shared training settings, and ``cnn.<arch>`` each."""

    registry: ClassVar = architectures
    __pydantic_extra__: dict[str, Annotated[ArchSection, BeforeValidator(none_is_empty)]] = Field(init=False)
    architectures: Annotated[NameList, name_list(architectures)]
    epochs: EpochSetting  # a number, or one per kind of data (EpochsByData)
    batch_size: BatchSize
    learning_rate: LearningRate
    patience: Annotated[int, Field(ge=0)] = 5
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"  # models.training.MONITORS
    lr_schedule: str = "plateau"  # checked by models.training, which defines the schedules
    mixed_precision: str = "auto"  # likewise
    deterministic: bool = True
    augment: Annotated[AugmentConfig, BeforeValidator(none_is_empty)] = AugmentConfig()

    def section(self, name: str) -> ArchSection:
        """``cnn.<name>``; empty (the architecture's defaults, no overrides) when the file has none."""
        return (self.model_extra or {}).get(name, ArchSection())

    def training(self, arch: str) -> Training:
        """The one place an architecture's training settings are resolved: ``cnn.<arch>.train``'s
        value where it is set, else the shared ``cnn`` one."""
        own = self.section(arch).train
        return Training(*(getattr(self, key) if getattr(own, key) is None else getattr(own, key)
                          for key in Training._fields))


class EvaluationConfig(Strict):
    """How sure the verdict is: every interval's confidence, the bootstrap's resamples (seeded
    with ``seed``), the level of McNemar's test, how many seeds each stochastic model is
    trained with (issue 11; models/statistics.py), and the metric that ranks, selects and
    decides (comparison/metrics.py: ``auto`` balances imbalanced classes)."""

    confidence: Fraction = 0.95
    bootstrap_resamples: Annotated[int, Field(ge=100)] = 2000
    alpha: Fraction = 0.05
    repeats: Annotated[int, Field(ge=1, le=1000)] = 1
    metric: Literal["auto", "accuracy", "balanced_accuracy"] = "auto"  # comparison.metrics.SETTINGS


class Config(Strict):
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)]
    mlflow: nullable(MlflowConfig) = MlflowConfig()
    evaluation: nullable(EvaluationConfig) = EvaluationConfig()
    data: nullable(DataConfig)
    features: nullable(FeaturesConfig)
    classical: nullable(ClassicalConfig)
    cnn: nullable(CnnConfig)
    curve: nullable(CurveConfig) = CurveConfig()  # the learning curve (pipeline/learning_curve.py)
    _source: str = PrivateAttr("params.yaml")

    @property
    def source(self) -> str:
        """The params file this configuration was read from (prefix of every error)."""
        return self._source

    @property
    def experiment(self) -> str:
        return self.mlflow.experiment

    def model_ids(self) -> dict[str, list[str]]:
        """The configured models of both approaches, as the compare stage expects them."""
        return {
            "classical": [f"{f}-{c}" for f in self.features.names for c in self.classical.classifiers],
            "deep": list(self.cnn.architectures),
        }


def parse_config(raw: Any, source: str = "params.yaml", overrides: dict[str, Any] | None = None) -> Config:
    """Validate an already-loaded params mapping (see :func:`load_config`)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping at top level, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides, source)
    if moved := moved_key(raw):
        raise ConfigError(f"{source}: {moved}")
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {error_line(exc)}") from None
    if cfg.data.dataset != "digits" and cfg.data.path is None:
        raise ConfigError(f"{source}: data.path = None: dataset '{cfg.data.dataset}' needs data.path (a directory)")
    if cfg.data.test_path is not None and cfg.data.dataset != "folder":
        raise ConfigError(f"{source}: data.test_path = {cfg.data.test_path!r}: only for dataset 'folder' (a second "
                          f"folder of class folders as the test split), not '{cfg.data.dataset}'")
    cnn = cfg.cnn.model_copy(update={"augment": cfg.cnn.augment.resolved(cfg.data.channels, cfg.data.image_size)})
    if isinstance(cnn.epochs, EpochsByData):
        cnn = cnn.model_copy(update={"epochs": cnn.epochs.resolved(cfg.data.channels)})
    for name, section in (cnn.model_extra or {}).items():  # epochs by data -> this data's number
        if isinstance(section.train.epochs, EpochsByData):
            train = section.train.model_copy(update={"epochs": section.train.epochs.resolved(cfg.data.channels)})
            cnn.model_extra[name] = section.model_copy(update={"train": train})
    cfg = cfg.model_copy(update={"cnn": cnn})
    cfg._source = source
    return cfg


def load_config(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate params.yaml; ``overrides`` maps dotted keys to values for one run."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the project root, where params.yaml lives)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(raw, str(path), overrides)


def apply_overrides(raw: dict, overrides: dict[str, Any] | None, source: str = "params.yaml") -> dict:
    """A copy of ``raw`` with dotted keys (``cnn.alexnet.train.epochs``) set; missing sections are created."""
    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise ConfigError(f"{source}: cannot override '{dotted}': '{part}' is not a section")
            node = node[part]
        node[leaf] = value
    return raw


def component_section(cfg: Config, section: str) -> contextlib.AbstractContextManager[None]:
    """Re-raise a component's ParameterError as ``<params file>: <section>: <message>``."""
    return errors.component_section(cfg.source, section)

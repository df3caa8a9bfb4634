"""params.yaml -> typed, validated configuration (pydantic v2, strict types, no unknown keys).

Every mistake becomes one :class:`ConfigError` line naming the key, the bad value and
what is allowed, e.g. ``params.yaml: data.image_size = 4: must be an integer >= 8``.

Loading checks the pipeline's own settings and the names lists against the registries
(``features.extractor_names()``, ``models.classifiers.names()``,
``models.architectures.names()``), which list modules without importing them. A
component's own section (``features.hog``, ``classical.rbf_svm``, ``cnn.alexnet``) and the
training vocabulary (``cnn.mixed_precision``, ``cnn.lr_schedule``) are checked by the
component itself when the stage that runs it builds it, inside :func:`component_section`.
This module imports no component code, so editing a component reruns only its stages.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError
from typing_extensions import TypedDict

from pipeline.errors import ConfigError

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "folder")  # pipeline/datasets.py loads each


def _extractor_names() -> tuple[str, ...]:
    from features import extractor_names

    return extractor_names()


def _classifier_names() -> tuple[str, ...]:
    from models.classifiers import names

    return names()


def _architecture_names() -> tuple[str, ...]:
    from models.architectures import names

    return names()


def _check_name(value: str, names: Callable[[], tuple[str, ...]]) -> str:
    if value not in names():
        raise ValueError(f"unknown name {value!r}; allowed: {', '.join(names())}")
    return value


def _registered(names: Callable[[], tuple[str, ...]]) -> AfterValidator:
    """A dict key that must be a registered component name."""
    return AfterValidator(lambda value: _check_name(value, names))


def _name_list(names: Callable[[], tuple[str, ...]]) -> AfterValidator:
    """A non-empty list of distinct registered names."""
    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            raise ValueError(f"must be a non-empty list; allowed items: {', '.join(names())}")
        for value in values:
            _check_name(value, names)
        if len(set(values)) != len(values):
            raise ValueError("must not repeat a name")
        return values
    return AfterValidator(check)


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


NameList = Annotated[tuple[str, ...], Field(strict=False)]  # YAML gives lists
Section = Annotated[dict[str, Any], BeforeValidator(_none_is_empty)]  # checked by its component
Epochs = Annotated[int, Field(ge=1, le=10_000)]
BatchSize = Annotated[int, Field(ge=1, le=65_536)]
LearningRate = Annotated[float, Field(gt=0.0, le=10.0)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class MlflowConfig(_Strict):
    experiment: Annotated[str, Field(min_length=1)] = "classic-vs-deep"


class DataConfig(_Strict):
    dataset: Literal[DATASETS]
    path: Annotated[str, Field(min_length=1)] | None = None
    image_size: Annotated[int, Field(ge=8, le=1024)] | None  # None keeps the native size
    channels: Literal[1, 3] = 1
    val_fraction: Fraction = 0.15
    test_fraction: Fraction = 0.2  # only for datasets without an official test split
    limit_per_class: Annotated[int, Field(ge=3)] | None = None
    deskew: bool = False  # pipeline/deskew.py, after resizing, for every split and model
    max_pixels: Annotated[int, Field(ge=1)] = 100_000_000  # pipeline/datasets.py checks each file's header


class FeaturesConfig(_Strict):
    names: Annotated[NameList, _name_list(_extractor_names)]
    n_jobs: Any = -1  # checked by the extractors (features/_batch.py), which take it
    chunk_size: Any = 2048  # likewise
    params: dict[Annotated[str, _registered(_extractor_names)], Section] = {}


class ClassicalConfig(_Strict):
    classifiers: Annotated[NameList, _name_list(_classifier_names)]
    pca: Any = None  # checked by models.classical.make_classifier
    scale: Literal["standard", "none"] = "standard"  # models.classical.SCALINGS
    search: bool = False
    hyperparams: dict[Annotated[str, _registered(_classifier_names)], Section] = {}
    grid: dict[Annotated[str, _registered(_classifier_names)], Section] = {}  # lists: models.classical.make_search


class TrainingOverrides(TypedDict, total=False):
    """What ``cnn.<arch>`` may set besides the architecture's own parameters."""

    __pydantic_config__ = ConfigDict(strict=True, extra="allow")  # the rest: validate_components
    epochs: Epochs
    batch_size: BatchSize
    learning_rate: LearningRate


TRAINING_OVERRIDES = tuple(TrainingOverrides.__annotations__)


class AugmentConfig(_Strict):
    """Training-time augmentation (models/augment.py); off unless switched on."""
    horizontal_flip: bool = False
    max_shift: Annotated[int, Field(ge=0, le=64)] = 0


class CnnConfig(_Strict):
    architectures: Annotated[NameList, _name_list(_architecture_names)]
    epochs: Epochs
    batch_size: BatchSize
    learning_rate: LearningRate
    patience: Annotated[int, Field(ge=0)] = 5
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"  # models.training.MONITORS
    lr_schedule: str = "plateau"  # checked by models.training, which defines the schedules
    mixed_precision: str = "auto"  # likewise
    deterministic: bool = True
    augment: AugmentConfig = AugmentConfig()
    arch_params: dict[Annotated[str, _registered(_architecture_names)],
                      Annotated[TrainingOverrides, BeforeValidator(_none_is_empty)]] = {}


class EvaluationConfig(_Strict):
    """How sure the verdict is: every interval's confidence, the bootstrap's resamples (seeded
    with ``seed``), the level of McNemar's test, and how many seeds each stochastic model is
    trained with (issue 11; models/statistics.py)."""

    confidence: Fraction = 0.95
    bootstrap_resamples: Annotated[int, Field(ge=100)] = 2000
    alpha: Fraction = 0.05
    repeats: Annotated[int, Field(ge=1, le=1000)] = 1


class Config(_Strict):
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)]
    mlflow: MlflowConfig = MlflowConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    data: DataConfig
    features: FeaturesConfig
    classical: ClassicalConfig
    cnn: CnnConfig
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


# params.yaml section -> (its model, the field holding its per-component sub-sections, their registry)
_SECTIONS: dict[str, tuple[type[BaseModel] | None, str | None, Callable[[], tuple[str, ...]] | None]] = {
    "": (Config, None, None),
    "mlflow": (MlflowConfig, None, None),
    "evaluation": (EvaluationConfig, None, None),
    "data": (DataConfig, None, None),
    "features": (FeaturesConfig, "params", _extractor_names),
    "classical": (ClassicalConfig, "hyperparams", _classifier_names),
    "classical.grid": (None, None, _classifier_names),
    "cnn": (CnnConfig, "arch_params", _architecture_names),
}


def _to_fields(raw: dict) -> dict:
    """params.yaml's layout -> the models': a section's keys that are not its settings
    (``features.hog``, ``classical.logreg``, ``cnn.alexnet``) move under its components field."""
    data = {key: _none_is_empty(value) if key in _SECTIONS else value for key, value in raw.items()}
    for name, (model, field, _) in _SECTIONS.items():
        body = data.get(name)
        if field and isinstance(body, dict):
            settings = set(model.model_fields) - {field}
            data[name] = ({k: v for k, v in body.items() if k in settings}
                          | {field: {k: v for k, v in body.items() if k not in settings}})
    return data


def _allowed_keys(section: str) -> list[str]:
    model, field, names = _SECTIONS.get(section, (None, None, None))
    keys = [k for k in (model.model_fields if model else ()) if k != field]
    return sorted([*keys, *(names() if names else ())])


_BOUNDS = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}
_REASONS = {
    "int_type": "must be an integer", "float_type": "must be a number", "bool_type": "must be true or false",
    "string_type": "must be a string", "string_too_short": "must be a non-empty string",
    "dict_type": "must be a mapping of key: value", "model_type": "must be a mapping of key: value",
    "tuple_type": "must be a list",
}


def _reason(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(ctx["error"])
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return f"must be {'an integer' if isinstance(bound, int) else 'a number'} {_BOUNDS[kind]} {bound}"
    if kind == "literal_error":
        return "allowed: " + ctx["expected"].replace("'", "").replace(" or ", ", ")
    return _REASONS.get(kind, error["msg"])


def _one_line(exc: ValidationError, source: str) -> ConfigError:
    """pydantic's first error as ``<source>: <dotted key> = <value>: <what is allowed>``."""
    error = exc.errors()[0]
    component_fields = {field for _, field, _ in _SECTIONS.values() if field}
    parts: list[str] = []
    for i, part in enumerate(error["loc"]):
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
        elif part != "[key]" and not (i == 1 and part in component_fields):
            parts.append(str(part))
    key, parent = ".".join(parts), ".".join(parts[:-1])
    if error["type"] == "missing":
        return ConfigError(f"{source}: missing key '{key}'")
    if error["type"] == "extra_forbidden" or error["loc"][-1] == "[key]":
        return ConfigError(f"{source}: unknown key '{key}'; allowed in '{parent or 'top level'}': "
                           f"{', '.join(_allowed_keys(parent))}")
    return ConfigError(f"{source}: {key} = {error['input']!r}: {_reason(error)}")


def apply_overrides(raw: dict, overrides: dict[str, Any] | None, source: str = "params.yaml") -> dict:
    """A copy of ``raw`` with dotted keys (``cnn.alexnet.epochs``) set; missing sections are created."""
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


def parse_config(raw: Any, source: str = "params.yaml", overrides: dict[str, Any] | None = None) -> Config:
    """Validate an already-loaded params mapping (see :func:`load_config`)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping at top level, got {type(raw).__name__}")
    try:
        cfg = Config.model_validate(_to_fields(apply_overrides(raw, overrides, source)))
    except ValidationError as exc:
        raise _one_line(exc, source) from None
    if cfg.data.dataset != "digits" and cfg.data.path is None:
        raise ConfigError(f"{source}: data.path = None: dataset '{cfg.data.dataset}' needs data.path (a directory)")
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


def for_arch(cfg: Config, arch: str) -> Config:
    """The config one architecture trains with: cnn.<arch>'s epochs/batch_size/learning_rate
    replace the shared cnn values, and arch_params[arch] keeps only the architecture's own."""
    own = cfg.cnn.arch_params.get(arch, {})
    overrides = {k: v for k, v in own.items() if k in TRAINING_OVERRIDES}
    builder = {k: v for k, v in own.items() if k not in TRAINING_OVERRIDES}
    cnn = cfg.cnn.model_copy(update={**overrides, "arch_params": {**cfg.cnn.arch_params, arch: builder}})
    return cfg.model_copy(update={"cnn": cnn})


@contextlib.contextmanager
def component_section(cfg: Config, section: str) -> Iterator[None]:
    """Re-raise a component's ParameterError as ``<params file>: <section>: <message>``."""
    from features.errors import ParameterError as FeatureParameterError
    from models.errors import ParameterError as ModelParameterError

    try:
        yield
    except (FeatureParameterError, ModelParameterError) as exc:
        raise ConfigError(f"{cfg.source}: {section}: {' '.join(str(exc).split())}") from None

"""params.yaml -> typed, validated configuration.

Every mistake becomes one :class:`ConfigError` line naming the key, the bad value and
what is allowed, e.g. ``params.yaml: data.image_size = 4: must be an integer >= 8``.
Per-component parameters (``features.hog``, ``classical.rbf_svm``, ``cnn.alexnet``) are
checked against the component's own signature by :func:`validate_components`, which the
stages call (it imports scikit-learn, so it is kept out of CLI start-up).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from pipeline.errors import ConfigError

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "folder")
FEATURES = ("raw", "sobel", "hog", "sift")
CLASSIFIERS = ("linear_svm", "rbf_svm", "logreg", "random_forest", "knn")
ARCHITECTURES = ("lenet5", "alexnet")
# Keyword arguments of the CNN builders in models/cnn.py that params.yaml may set
# (kept here so validation does not import Keras; tests/test_config.py checks they agree).
ARCH_PARAMS = {"lenet5": ("activation", "pooling"), "alexnet": ("variant", "image_size", "dropout")}
# Training settings an architecture may override under cnn.<arch> (AlexNet needs a smaller
# learning rate and fewer CPU epochs than LeNet-5).
ARCH_TRAINING_OVERRIDES = ("epochs", "batch_size", "learning_rate")
LR_SCHEDULES = ("plateau", "cosine", "constant")
MIXED_PRECISION = ("auto", "on", "off")

_MISSING = object()


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    path: str | None
    image_size: int | None  # None keeps the native size (fixed-size datasets only)
    channels: int
    val_fraction: float
    test_fraction: float
    limit_per_class: int | None


@dataclass(frozen=True)
class FeaturesConfig:
    names: tuple[str, ...]
    n_jobs: int
    chunk_size: int
    params: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ClassicalConfig:
    classifiers: tuple[str, ...]
    pca: int | float | None
    search: bool
    hyperparams: dict[str, dict[str, Any]]
    grid: dict[str, dict[str, list]]


@dataclass(frozen=True)
class CnnConfig:
    architectures: tuple[str, ...]
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    lr_schedule: str
    mixed_precision: str
    deterministic: bool
    arch_params: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Config:
    seed: int
    experiment: str
    data: DataConfig
    features: FeaturesConfig
    classical: ClassicalConfig
    cnn: CnnConfig
    source: str = "params.yaml"

    def model_ids(self) -> dict[str, list[str]]:
        """The configured models of both approaches, as the compare stage expects them."""
        return {
            "classical": [f"{f}-{c}" for f in self.features.names for c in self.classical.classifiers],
            "deep": list(self.cnn.architectures),
        }


class _Section:
    """Reads one mapping of params.yaml, remembering which keys were used."""

    def __init__(self, value: Any, path: str, source: str):
        self.path, self.source = path, source
        if not isinstance(value, dict):
            raise self.error(path, value, "must be a mapping of key: value")
        self.mapping, self.used = value, set()

    def error(self, key: str, value: Any, why: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key} = {value!r}: {why}")

    def _key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, check: Callable[[Any], str | None], default: Any = _MISSING) -> Any:
        self.used.add(name)
        if name not in self.mapping:
            if default is _MISSING:
                raise ConfigError(f"{self.source}: missing key '{self._key(name)}'")
            return default
        value = self.mapping[name]
        problem = check(value)
        if problem:
            raise self.error(self._key(name), value, problem)
        return value

    def section(self, name: str, default: Any = _MISSING) -> "_Section":
        self.used.add(name)
        value = self.mapping.get(name, default)
        if value is _MISSING:
            raise ConfigError(f"{self.source}: missing section '{self._key(name)}'")
        return _Section({} if value is None else value, self._key(name), self.source)

    def finish(self) -> None:
        unknown = sorted(set(self.mapping) - self.used, key=str)
        if unknown:
            allowed = ", ".join(sorted(self.used))
            raise ConfigError(
                f"{self.source}: unknown key '{self._key(unknown[0])}'; allowed in "
                f"'{self.path or 'top level'}': {allowed}"
            )


# --- value checks: each returns None when fine, else the reason ---------------------------

def _int(lo: int | None = None, hi: int | None = None, nullable: bool = False):
    def check(v):
        if v is None and nullable:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            return "must be an integer" + (" or null" if nullable else "")
        if lo is not None and v < lo:
            return f"must be an integer >= {lo}"
        if hi is not None and v > hi:
            return f"must be an integer <= {hi}"
        return None
    return check


def _float(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "must be a number"
        if (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
            return f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        return None
    return check


def _choice(allowed: tuple):
    def check(v):
        return None if v in allowed else f"allowed: {', '.join(map(str, allowed))}"
    return check


def _bool(v):
    return None if isinstance(v, bool) else "must be true or false"


def _str_or_null(v):
    return None if v is None or (isinstance(v, str) and v) else "must be a non-empty string or null"


def _nonempty_str(v):
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


def _names(allowed: tuple):
    def check(v):
        if not isinstance(v, list) or not v:
            return f"must be a non-empty list; allowed items: {', '.join(allowed)}"
        bad = [x for x in v if x not in allowed]
        if bad:
            return f"unknown name {bad[0]!r}; allowed: {', '.join(allowed)}"
        if len(set(v)) != len(v):
            return "must not repeat a name"
        return None
    return check


def _pca(v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "must be null, an integer >= 1 (components) or a fraction in (0, 1) (variance kept)"
    if isinstance(v, int) and v >= 1 or isinstance(v, float) and 0 < v < 1:
        return None
    return "must be null, an integer >= 1 (components) or a fraction in (0, 1) (variance kept)"


def _component_params(section: _Section, names: tuple[str, ...]) -> dict[str, dict]:
    params = {}
    for name in names:
        sub = section.mapping.get(name, {})
        section.used.add(name)
        if sub is None:
            sub = {}
        if not isinstance(sub, dict):
            raise section.error(section._key(name), sub, "must be a mapping of parameter: value")
        params[name] = dict(sub)
    return params


# --- loading -------------------------------------------------------------------------------

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
    raw = apply_overrides(raw, overrides, source)
    top = _Section(raw, "", source)
    seed = top.get("seed", _int(0, 2**32 - 1))
    ml = top.section("mlflow", {})
    experiment = ml.get("experiment", _nonempty_str, "classic-vs-deep")
    ml.finish()

    d = top.section("data")
    data = DataConfig(
        dataset=d.get("dataset", _choice(DATASETS)),
        path=d.get("path", _str_or_null, None),
        image_size=d.get("image_size", _int(8, 1024, nullable=True)),
        channels=d.get("channels", _choice((1, 3)), 1),
        val_fraction=d.get("val_fraction", _float(0.0, 1.0, lo_open=True, hi_open=True), 0.15),
        test_fraction=d.get("test_fraction", _float(0.0, 1.0, lo_open=True, hi_open=True), 0.2),
        limit_per_class=d.get("limit_per_class", _int(3, nullable=True), None),
    )
    d.finish()
    if data.dataset != "digits" and data.path is None:
        raise ConfigError(f"{source}: data.path = None: dataset '{data.dataset}' needs data.path (a directory)")

    f = top.section("features")
    names = tuple(f.get("names", _names(FEATURES)))
    features = FeaturesConfig(
        names=names,
        n_jobs=f.get("n_jobs", _int(-64, 256), -1),
        chunk_size=f.get("chunk_size", _int(1), 2048),
        params=_component_params(f, FEATURES),
    )
    if features.n_jobs == 0:
        raise f.error("features.n_jobs", 0, "must be -1 (all cores) or a positive number of workers")
    f.finish()

    c = top.section("classical")
    g = c.section("grid", {})
    grid = _component_params(g, CLASSIFIERS)
    g.finish()
    for name, spec in grid.items():
        for key, values in spec.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source}: classical.grid.{name}.{key} = {values!r}: must be a non-empty list")
    classical = ClassicalConfig(
        classifiers=tuple(c.get("classifiers", _names(CLASSIFIERS))),
        pca=c.get("pca", _pca, None),
        search=c.get("search", _bool, False),
        hyperparams=_component_params(c, CLASSIFIERS),
        grid=grid,
    )
    c.finish()

    n = top.section("cnn")
    cnn = CnnConfig(
        architectures=tuple(n.get("architectures", _names(ARCHITECTURES))),
        epochs=n.get("epochs", _int(1, 10_000)),
        batch_size=n.get("batch_size", _int(1, 65_536)),
        learning_rate=n.get("learning_rate", _float(0.0, 10.0, lo_open=True)),
        patience=n.get("patience", _int(0), 5),
        lr_schedule=n.get("lr_schedule", _choice(LR_SCHEDULES), "plateau"),
        mixed_precision=n.get("mixed_precision", _choice(MIXED_PRECISION), "auto"),
        deterministic=n.get("deterministic", _bool, True),
        arch_params=_component_params(n, ARCHITECTURES),
    )
    n.finish()
    checks = {"epochs": _int(1, 10_000), "batch_size": _int(1, 65_536),
              "learning_rate": _float(0.0, 10.0, lo_open=True)}
    for arch, params in cnn.arch_params.items():
        allowed = ARCH_PARAMS[arch] + ARCH_TRAINING_OVERRIDES
        for key, value in params.items():
            if key not in allowed:
                raise ConfigError(f"{source}: unknown key 'cnn.{arch}.{key}'; allowed: {', '.join(allowed)}")
            problem = checks[key](value) if key in checks else None
            if problem:
                raise ConfigError(f"{source}: cnn.{arch}.{key} = {value!r}: {problem}")
    top.finish()
    return Config(seed, experiment, data, features, classical, cnn, source=source)


def for_arch(cfg: Config, arch: str) -> Config:
    """The config one architecture trains with: cnn.<arch>'s epochs/batch_size/learning_rate
    replace the shared cnn values, and arch_params[arch] keeps only builder arguments."""
    own = cfg.cnn.arch_params.get(arch, {})
    overrides = {k: v for k, v in own.items() if k in ARCH_TRAINING_OVERRIDES}
    builder = {k: v for k, v in own.items() if k not in ARCH_TRAINING_OVERRIDES}
    cnn = replace(cfg.cnn, **overrides, arch_params={**cfg.cnn.arch_params, arch: builder})
    return replace(cfg, cnn=cnn)


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


def validate_components(cfg: Config, features: bool = True, classifiers: bool = True) -> None:
    """Check the configured extractors' and classifiers' parameters (imports scikit-learn)."""
    if features:
        from features import make_extractor

        for name in cfg.features.names:
            with _prefixed(cfg.source):
                make_extractor(name, **cfg.features.params.get(name, {}))
    if not classifiers:
        return
    from models.classical import make_classifier

    for name in cfg.classical.classifiers:
        with _prefixed(cfg.source):
            make_classifier(name, pca=cfg.classical.pca, random_state=cfg.seed, **cfg.classical.hyperparams[name])


class _prefixed:
    """Prefix component errors with the params file so the user knows where to look."""

    def __init__(self, source: str):
        self.source = source

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, ConfigError) and not str(exc).startswith(self.source):
            raise ConfigError(f"{self.source}: {exc}") from None
        return False

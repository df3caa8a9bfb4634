"""The building blocks of :mod:`pipeline.config`: strict sections, component registries, value types.

A section's settings are its fields; any other key is an error naming the allowed ones
(:class:`UnknownKey`, made one line by :mod:`pipeline.config_errors`), unless the section holds
components' own sub-sections (``features.hog``, ``cnn.alexnet``) and the component's registry
accepts the name: the registries' own checks (``features.check_extractor_name``,
``models.classifiers.check_name``, ``models.architectures.check_name``) are the one
validation of component names. Imports no component code and nothing from ``pipeline``.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Callable, ClassVar, NamedTuple, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "folder")  # pipeline/datasets.py loads each


class Registry(NamedTuple):
    """A component registry as the config uses it: its names, and its check of one name."""

    names: Callable[[], tuple[str, ...]]
    check: Callable[[str], str]  # raises a ValueError (the component's ParameterError) listing the names


def extractors() -> Registry:
    import features

    return Registry(features.extractor_names, features.check_extractor_name)


def classifiers() -> Registry:
    from models import classifiers

    return Registry(classifiers.names, classifiers.check_name)


def architectures() -> Registry:
    from models import architectures

    return Registry(architectures.names, architectures.check_name)


def name_list(registry: Callable[[], Registry]) -> AfterValidator:
    """A non-empty list of distinct registered names."""
    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            raise ValueError(f"must be a non-empty list; allowed items: {', '.join(registry().names())}")
        for value in values:
            registry().check(value)
        if len(set(values)) != len(values):
            raise ValueError("must not repeat a name")
        return values
    return AfterValidator(check)


def none_is_empty(value: Any) -> Any:
    return {} if value is None else value


NameList = Annotated[tuple[str, ...], Field(strict=False)]  # YAML gives lists
Section = Annotated[dict[str, Any], BeforeValidator(none_is_empty)]  # checked by its component
Epochs = Annotated[int, Field(ge=1, le=10_000)]
BatchSize = Annotated[int, Field(ge=1, le=65_536)]
LearningRate = Annotated[float, Field(gt=0.0, le=10.0)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


class UnknownKey(ValueError):
    """A key its section does not have; :func:`pipeline.config_errors.error_line` names it with
    ``allowed``, the section's keys."""

    def __init__(self, key: str, allowed: str) -> None:
        super().__init__(f"unknown key {key!r}; allowed: {allowed}")
        self.key, self.allowed = key, allowed


class Strict(BaseModel):
    """A params.yaml section: its settings are its fields; any other key is an error naming the
    allowed ones, unless :meth:`_is_component` accepts it (a component's own sub-section)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    registry: ClassVar[Callable[[], Registry] | None] = None  # names the sub-sections, if any

    @classmethod
    def _is_component(cls, key: str) -> bool:
        if cls.registry is None:
            return False
        try:
            cls.registry().check(key)
        except ValueError:
            return False
        return True

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        for key in data if isinstance(data, dict) else ():
            if key not in cls.model_fields and not cls._is_component(key):
                names = cls.registry().names() if cls.registry else ()
                raise UnknownKey(key, ", ".join(sorted([*cls.model_fields, *names])))
        return data


class WithComponents(Strict):
    """A section whose other keys are the registered components' own sections."""

    model_config = ConfigDict(extra="allow")

    def section(self, name: str) -> Any:
        """The component ``name``'s own section (``features.hog``); empty when the file has none."""
        return (self.model_extra or {}).get(name, {})


def nullable(model: type[BaseModel]) -> Any:
    """A top-level section field: ``null`` (or left out, where it has defaults) reads as empty."""
    return Annotated[model, BeforeValidator(none_is_empty)]


AUTO = "auto"
SHIFT_PER_PIXEL = 4 / 32  # He et al. 2016: 4 pixels of zero padding, then a random 32x32 crop


def _flip_setting(value: Any) -> Any:
    if value != AUTO and not isinstance(value, bool):
        raise ValueError("must be true, false or auto")
    return value


def _shift_setting(value: Any) -> Any:
    if value != AUTO and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64):
        raise ValueError("must be auto or a whole number of pixels in [0, 64]")
    return value


class EpochsByData(Strict):
    """Epochs that depend on the data: ``grayscale`` for ``data.channels`` 1 (digits, letters) and
    ``colour`` for 3 (photos, which a network takes several times more epochs to fit). Decided
    by :meth:`resolved` when the configuration is loaded, so the stages only ever see a number."""

    grayscale: Epochs
    colour: Epochs

    def resolved(self, channels: int) -> int:
        return self.colour if channels == 3 else self.grayscale


# a number, or a number per kind of data; the tag in <> is pydantic's name for the member in an
# error's path, which config_errors.error_line leaves out of the key it names
EpochSetting = Annotated[
    Union[Annotated[Epochs, Tag("<number>")], Annotated[EpochsByData, Tag("<by data>")]],
    Discriminator(lambda value: "<by data>" if isinstance(value, (dict, EpochsByData)) else "<number>"),
]


class AugmentConfig(Strict):
    """Training-time augmentation (models/augment.py). ``auto`` is decided by the data in
    :meth:`resolved`, when the configuration is loaded; true/false and numbers are kept."""

    horizontal_flip: Annotated[Any, AfterValidator(_flip_setting)] = AUTO
    max_shift: Annotated[Any, AfterValidator(_shift_setting)] = AUTO

    def resolved(self, channels: int, image_size: int | None) -> AugmentConfig:
        """The one place ``auto`` is decided: on for colour photos (``data.channels`` 3), whose
        labels survive a mirror and a small shift, off for grayscale (digits and letters, where
        a mirrored 2 is no 2 and the default run stays as it was). On means a flip and He et
        al.'s 4-pixel shift at 32x32, scaled to ``data.image_size`` (size / 8, rounded half up;
        4 when the native size is kept)."""
        colour = channels == 3
        size = 32 if image_size is None else image_size
        shift = math.floor(size * SHIFT_PER_PIXEL + 0.5) if colour else 0
        return self.model_copy(update={
            "horizontal_flip": colour if self.horizontal_flip == AUTO else self.horizontal_flip,
            "max_shift": shift if self.max_shift == AUTO else self.max_shift,
        })


def _fractions(values: tuple[float, ...]) -> tuple[float, ...]:
    if not values:
        raise ValueError("must be a non-empty list of fractions in (0, 1], e.g. [0.1, 0.25, 0.5, 1.0]")
    for value in values:
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{value!r} is not a fraction in (0, 1]")
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a fraction")
    return values


class CurveConfig(Strict):
    """``curve``: the learning curve's training-set fractions and its models (null: the best
    classical and the best deep model ``compare`` chose on validation)."""

    fractions: Annotated[tuple[Annotated[float, Field(strict=False)], ...], Field(strict=False),
                         AfterValidator(_fractions)] = (0.1, 0.25, 1.0)
    models: Annotated[tuple[str, ...], Field(strict=False, min_length=2)] | None = None

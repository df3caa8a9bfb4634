"""params.yaml validation: every mistake is one ConfigError line naming key, value, allowed."""
from __future__ import annotations

import copy

import pytest
import yaml

import features
from features import extractor_names
from models import architectures, classifiers
from pipeline.config import Config, Training, component_section, load_config, parse_config
from pipeline.errors import ConfigError

from helpers import REPO_ROOT


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def with_change(raw: dict, dotted: str, value) -> dict:
    data = copy.deepcopy(raw)
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return data


def config_error(raw: dict, dotted: str, value) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(with_change(raw, dotted, value))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_default_params_load(raw):
    cfg = parse_config(raw)
    assert isinstance(cfg, Config) and cfg.source == "params.yaml" and cfg.experiment == "classic-vs-deep"
    assert cfg.data.dataset == "digits" and cfg.data.image_size == 32 and cfg.data.path is None
    assert cfg.features.names == ("raw", "sobel", "hog", "sift")
    assert cfg.features.hog["pixels_per_cell"] == [4, 4]
    assert cfg.classical.rbf_svm == {"C": 10.0, "gamma": "scale"}
    assert cfg.model_ids()["deep"] == ["lenet5", "alexnet"]
    classical = cfg.model_ids()["classical"]
    assert classical[:4] == ["raw-rbf_svm", "raw-logreg", "raw-random_forest", "raw-knn"]
    assert len(classical) == len(set(classical)) == 16  # every classifier on every feature set
    assert len(cfg.model_ids()["classical"]) == len(cfg.features.names) * len(cfg.classical.classifiers)


@pytest.mark.parametrize(
    "dotted, value, expected",
    [
        ("data.image_size", 4, "params.yaml: data.image_size = 4: must be an integer >= 8"),
        ("data.image_size", "big", "params.yaml: data.image_size = 'big': must be an integer"),
        ("data.dataset", "imagenet",
         "params.yaml: data.dataset = 'imagenet': allowed: digits, mnist, fashion_mnist, cifar10, folder"),
        ("data.channels", 2, "params.yaml: data.channels = 2: allowed: 1, 3"),
        ("data.val_fraction", 1.5, "params.yaml: data.val_fraction = 1.5: must be a number < 1.0"),
        ("seed", -1, "params.yaml: seed = -1: must be an integer >= 0"),
        ("seed", True, "params.yaml: seed = True: must be an integer"),
        ("classical.search", "yes", "params.yaml: classical.search = 'yes': must be true or false"),
        ("classical.scale", "minmax", "params.yaml: classical.scale = 'minmax': allowed: standard, none"),
        ("data.deskew", "yes", "params.yaml: data.deskew = 'yes': must be true or false"),
        ("cnn.epochs", 0, "params.yaml: cnn.epochs = 0: must be an integer >= 1"),
        ("cnn.learning_rate", 0, "params.yaml: cnn.learning_rate = 0: must be a number > 0.0"),
        ("cnn.alexnet.train.epochs", 0, "params.yaml: cnn.alexnet.train.epochs = 0: must be an integer >= 1"),
        ("cnn.lenet5.train.batch_size", 0.5, "params.yaml: cnn.lenet5.train.batch_size = 0.5: must be an integer"),
        ("cnn.alexnet.train.momentum", 0.9, "params.yaml: unknown key 'cnn.alexnet.train.momentum'; allowed in "
                                            "'cnn.alexnet.train': batch_size, epochs, learning_rate"),
        ("cnn.alexnet", [1], "params.yaml: cnn.alexnet = [1]: must be a mapping of key: value"),
        ("features.hog", [1], "params.yaml: features.hog = [1]: must be a mapping of key: value"),
        ("mlflow.experiment", "", "params.yaml: mlflow.experiment = '': must be a non-empty string"),
        ("evaluation.confidence", 1.0, "params.yaml: evaluation.confidence = 1.0: must be a number < 1.0"),
        ("evaluation.confidence", 0, "params.yaml: evaluation.confidence = 0: must be a number > 0.0"),
        ("evaluation.confidence", "95%", "params.yaml: evaluation.confidence = '95%': must be a number"),
        ("evaluation.bootstrap_resamples", 99,
         "params.yaml: evaluation.bootstrap_resamples = 99: must be an integer >= 100"),
        ("evaluation.bootstrap_resamples", 2000.0,
         "params.yaml: evaluation.bootstrap_resamples = 2000.0: must be an integer"),
        ("evaluation.alpha", -0.05, "params.yaml: evaluation.alpha = -0.05: must be a number > 0.0"),
        ("evaluation.alpha", 1, "params.yaml: evaluation.alpha = 1: must be a number < 1.0"),
        ("evaluation", [0.95], "params.yaml: evaluation = [0.95]: must be a mapping of key: value"),
        ("evaluation.repeats", 0, "params.yaml: evaluation.repeats = 0: must be an integer >= 1"),
        ("evaluation.metric", "f1",
         "params.yaml: evaluation.metric = 'f1': allowed: auto, accuracy, balanced_accuracy"),
    ],
)
def test_bad_values_name_key_value_and_allowed(raw, dotted, value, expected):
    assert config_error(raw, dotted, value) == expected


@pytest.mark.parametrize(
    "dotted, registry, check",
    [("features.names", extractor_names, features.check_extractor_name),
     ("classical.classifiers", classifiers.names, classifiers.check_name),
     ("cnn.architectures", architectures.names, architectures.check_name)],
)
def test_name_lists_are_checked_by_the_registry(raw, dotted, registry, check):
    allowed = ", ".join(registry())
    with pytest.raises(ValueError) as registry_error:
        check("surf")
    assert str(registry_error.value).endswith(f"'surf'; allowed: {allowed}")
    assert config_error(raw, dotted, [registry()[0], "surf"]) == (
        f"params.yaml: {dotted} = [{registry()[0]!r}, 'surf']: {registry_error.value}")
    assert config_error(raw, dotted, []).endswith(f"must be a non-empty list; allowed items: {allowed}")
    assert config_error(raw, dotted, [registry()[0]] * 2).endswith("must not repeat a name")
    # every registered name is accepted, in any order
    cfg = parse_config(with_change(raw, dotted, list(reversed(registry()))))
    section, field = dotted.split(".")
    assert getattr(getattr(cfg, section), field) == tuple(reversed(registry()))


@pytest.mark.parametrize(
    "dotted, message",
    [
        ("colour", "unknown key 'colour'; allowed in 'top level': classical, cnn, curve, data, evaluation, "
                   "features, mlflow, seed"),
        ("evaluation.level", "unknown key 'evaluation.level'; allowed in 'evaluation': alpha, bootstrap_resamples, "
                             "confidence"),
        ("data.size", "unknown key 'data.size'; allowed in 'data': channels, dataset, deskew, image_size, "),
        ("mlflow.uri", "unknown key 'mlflow.uri'; allowed in 'mlflow': experiment"),
        ("classical.grid.svm", "unknown key 'classical.grid.svm'; allowed in 'classical.grid': knn, linear_svm"),
    ],
)
def test_unknown_keys_are_rejected(raw, dotted, message):
    assert message in config_error(raw, dotted, 1)


def test_component_sections_are_the_registered_names(raw):
    message = config_error(raw, "features.surf", {"n": 1})
    assert message.startswith("params.yaml: unknown key 'features.surf'; allowed in 'features': ")
    for name in (*extractor_names(), "chunk_size", "n_jobs", "names"):
        assert name in message.split(": ", 2)[2]
    message = config_error(raw, "cnn.vgg16", {})
    assert all(name in message for name in architectures.names())


def test_evaluation_settings(raw):
    cfg = parse_config(raw)
    assert (cfg.evaluation.confidence, cfg.evaluation.bootstrap_resamples, cfg.evaluation.alpha) == (0.95, 2000, 0.05)
    changed = parse_config(raw, overrides={"evaluation.confidence": 0.9, "evaluation.bootstrap_resamples": 100,
                                           "evaluation.alpha": 0.01})
    assert (changed.evaluation.confidence, changed.evaluation.bootstrap_resamples, changed.evaluation.alpha) == (
        0.9, 100, 0.01)
    without = copy.deepcopy(raw)
    del without["evaluation"]  # a params file from before the section: the documented defaults
    assert parse_config(without).evaluation == cfg.evaluation
    assert parse_config(with_change(raw, "evaluation", None)).evaluation == cfg.evaluation


def test_missing_key_and_missing_path(raw):
    data = copy.deepcopy(raw)
    del data["data"]["dataset"]
    with pytest.raises(ConfigError, match=r"^params.yaml: missing key 'data.dataset'$"):
        parse_config(data)
    with pytest.raises(ConfigError, match="dataset 'mnist' needs data.path"):
        parse_config(with_change(raw, "data.dataset", "mnist"))


def test_overrides_apply_and_are_validated(raw):
    cfg = parse_config(raw, overrides={"data.dataset": "folder", "data.path": "imgs"})
    assert (cfg.data.dataset, cfg.data.path) == ("folder", "imgs")
    with pytest.raises(ConfigError, match=r"data.image_size = 2: must be an integer >= 8"):
        parse_config(raw, overrides={"data.image_size": 2})
    with pytest.raises(ConfigError, match="cannot override 'seed.x': 'seed' is not a section"):
        parse_config(raw, overrides={"seed.x": 1})


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+ is not valid YAML"):
        load_config(bad)
    good = tmp_path / "mine.yaml"
    good.write_text((REPO_ROOT / "params.yaml").read_text().replace("image_size: 32", "image_size: 3"))
    with pytest.raises(ConfigError, match=rf"^{good}: data.image_size = 3: must be an integer >= 8$"):
        load_config(good)


def leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_the_config_has_the_shape_of_the_file(raw):
    cfg = parse_config(raw)
    for dotted, value in leaves(raw):
        if value == "auto" and dotted.startswith("cnn.augment."):
            continue  # decided by the data on loading: test_augment_auto_follows_the_colour_channels
        if dotted.startswith("cnn.epochs.") or dotted.startswith("cnn.") and ".train.epochs." in dotted:
            continue  # epochs by data, decided on loading: test_epochs_by_data_follow_the_colour_channels
        node = cfg
        for part in dotted.split("."):
            node = node[part] if isinstance(node, dict) else getattr(node, part)
        assert (list(node) if isinstance(node, tuple) else node) == value, dotted


def test_architecture_training_overrides(raw):
    cfg = parse_config(raw)  # the digits: grayscale
    assert cfg.cnn.alexnet.train.model_dump() == {"epochs": 4, "batch_size": None, "learning_rate": 0.0003}
    assert cfg.cnn.alexnet.arguments() == {"variant": "original", "image_size": 63, "dropout": 0.0}
    # what each architecture trains with: its own value where set, else the shared cnn one
    assert tuple(cfg.cnn.training("alexnet")) == (4, 64, 0.0003)
    assert tuple(cfg.cnn.training("lenet5")) == (30, 64, 0.001)
    changed = parse_config(raw, overrides={"cnn.alexnet.train.batch_size": 128, "cnn.alexnet.train.epochs": None,
                                           "cnn.lenet5.train.learning_rate": 0.01, "cnn.epochs": 3})
    assert tuple(changed.cnn.training("alexnet")) == (3, 128, 0.0003)
    assert tuple(changed.cnn.training("lenet5")) == (3, 64, 0.01)
    without = copy.deepcopy(raw)
    del without["cnn"]["lenet5"]  # no section: the architecture's defaults and the shared settings
    assert parse_config(without).cnn.section("lenet5").arguments() == {}
    assert tuple(parse_config(without).cnn.training("lenet5")) == (30, 64, 0.001)


@pytest.mark.parametrize(
    "channels, epochs, expected",
    [
        (1, None, 4),  # params.yaml's AlexNet on grayscale: the default run's 4
        (3, None, 16),  # and on colour photos
        (3, {"grayscale": 2, "colour": 5}, 5),
        (1, {"grayscale": 2, "colour": 5}, 2),
        (3, 7, 7),  # a plain number holds for any data (README: -S cnn.alexnet.train.epochs=8)
    ],
)
def test_epochs_by_data_follow_the_colour_channels(raw, channels, epochs, expected):
    assert raw["cnn"]["alexnet"]["train"]["epochs"] == {"grayscale": 4, "colour": 16}
    assert raw["cnn"]["epochs"] == {"grayscale": 30, "colour": 60}
    overrides = {"data.channels": channels, **({} if epochs is None else {"cnn.alexnet.train.epochs": epochs})}
    cfg = parse_config(raw, overrides=overrides)
    assert cfg.cnn.alexnet.train.epochs == expected
    assert cfg.cnn.training("alexnet").epochs == expected
    with_train = parse_config(raw, overrides={**overrides, "cnn.lenet5.train.epochs": {"grayscale": 9, "colour": 3}})
    assert with_train.cnn.training("lenet5").epochs == (3 if channels == 3 else 9)  # any architecture may
    assert cfg.cnn.training("lenet5").epochs == (60 if channels == 3 else 30)  # the shared cnn.epochs by data
    assert cfg.cnn.epochs == (60 if channels == 3 else 30)


@pytest.mark.parametrize(
    "epochs, expected",
    [
        ({"grayscale": 4}, "cnn.alexnet.train.epochs.colour"),  # both are needed
        ({"grayscale": 4, "colour": 0}, "cnn.alexnet.train.epochs.colour"),
        ({"grayscale": 4, "colour": 16, "color": 8}, "color"),
    ],
)
def test_bad_epochs_by_data_name_the_key(raw, epochs, expected):
    message = config_error(raw, "cnn.alexnet.train.epochs", epochs)
    assert message.startswith("params.yaml: ") and expected in message and "\n" not in message


@pytest.mark.parametrize(
    "data, augment, expected",
    [
        ({"channels": 1}, {}, (False, 0)),  # grayscale (the digits default): off, the run unchanged
        ({"channels": 3}, {}, (True, 4)),  # colour at 32x32: flips and He et al.'s 4-pixel pad-and-crop
        ({"channels": 3, "image_size": 63}, {}, (True, 8)),  # 63 / 8 = 7.9: scaled with the image
        ({"channels": 3, "image_size": 28}, {}, (True, 4)),  # 3.5 rounds half up
        ({"channels": 3, "image_size": None}, {}, (True, 4)),  # native size: the paper's 4
        ({"channels": 3}, {"horizontal_flip": False}, (False, 4)),  # an explicit setting wins
        ({"channels": 3}, {"max_shift": 0}, (True, 0)),
        ({"channels": 1}, {"horizontal_flip": True, "max_shift": 2}, (True, 2)),
        ({"channels": 1}, {"max_shift": "auto", "horizontal_flip": True}, (True, 0)),
    ],
)
def test_augment_auto_follows_the_colour_channels(raw, data, augment, expected):
    overrides = {**{f"data.{k}": v for k, v in data.items()}, **{f"cnn.augment.{k}": v for k, v in augment.items()}}
    assert raw["cnn"]["augment"] == {"horizontal_flip": "auto", "max_shift": "auto"}
    resolved = parse_config(raw, overrides=overrides).cnn.augment
    assert (resolved.horizontal_flip, resolved.max_shift) == expected


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("horizontal_flip", "yes", "must be true, false or auto"),
        ("horizontal_flip", 1, "must be true, false or auto"),
        ("max_shift", -1, "must be auto or a whole number of pixels in [0, 64]"),
        ("max_shift", True, "must be auto or a whole number of pixels in [0, 64]"),
        ("max_shift", "on", "must be auto or a whole number of pixels in [0, 64]"),
    ],
)
def test_bad_augment_settings_name_the_key(raw, key, value, expected):
    assert config_error(raw, f"cnn.augment.{key}", value) == f"params.yaml: cnn.augment.{key} = {value!r}: {expected}"


def test_params_yaml_has_every_training_key_of_every_architecture(raw):
    """`dvc exp run -S cnn.<arch>.train.<key>=...` only overrides keys the file has."""
    for arch in architectures.names():
        assert set(raw["cnn"][arch]["train"]) == set(Training._fields), arch


@pytest.mark.parametrize(
    "dotted, value, expected",
    [
        ("cnn.alexnet.epochs", 4, "params.yaml: cnn.alexnet.epochs moved to cnn.alexnet.train.epochs"),
        ("cnn.lenet5.batch_size", 32, "params.yaml: cnn.lenet5.batch_size moved to cnn.lenet5.train.batch_size"),
        ("cnn.alexnet.learning_rate", 0.001,
         "params.yaml: cnn.alexnet.learning_rate moved to cnn.alexnet.train.learning_rate"),
        ("features.stack.part_params", {"hog": {"transform_sqrt": True}},
         "params.yaml: features.stack.part_params moved to features.stack.overrides"),
    ],
)
def test_a_moved_key_names_its_new_place(raw, dotted, value, expected):
    assert config_error(raw, dotted, value) == expected
    with pytest.raises(ConfigError) as err:  # a -S / CLI override of the old key too
        parse_config(raw, overrides={dotted: value})
    assert str(err.value) == expected


# --- each component's section is checked by the stage that builds it ---------------------

def validate(cfg: Config, *, features=(), classifiers=(), architectures=()) -> None:
    """What the stages do before reading any data, for the named components."""
    from pipeline.extractors import build_extractor
    from pipeline.train_classical import build_classifier
    from pipeline.cnn_training import check_settings

    for name in features:
        build_extractor(cfg, name)
    for name in classifiers:
        build_classifier(cfg, name)
    for name in architectures:
        check_settings(cfg, name)


def components_error(raw: dict, dotted: str, value, **names) -> str:
    cfg = parse_config(with_change(raw, dotted, value))  # loading does not look inside the section
    with pytest.raises(ConfigError) as err:
        validate(cfg, **names)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_default_components_validate(raw):
    cfg = parse_config(raw)
    validate(cfg, features=extractor_names(), classifiers=classifiers.names(), architectures=architectures.names())


@pytest.mark.parametrize(
    "dotted, value, expected",
    [
        ("features.hog.orientation", 12, "params.yaml: features.hog: "),
        ("features.sift.n_words", 0, "params.yaml: features.sift: "),
        ("features.n_jobs", 0, "params.yaml: features.hog: "),
        ("features.chunk_size", 0, "params.yaml: features.hog: "),
    ],
)
def test_extractor_sections(raw, dotted, value, expected):
    message = components_error(raw, dotted, value, features=["hog", "sift"])
    assert message.startswith(expected)  # hog is checked first
    assert dotted.rsplit(".", 1)[1] in message


def test_only_the_named_components_are_checked(raw):
    cfg = parse_config(with_change(raw, "features.hog.orientation", 12))
    validate(cfg, features=["raw"], classifiers=["logreg"], architectures=["lenet5"])


@pytest.mark.parametrize(
    "dotted, value, expected",
    [
        ("classical.rbf_svm.gama", 0.1, "params.yaml: classical.rbf_svm: SVC: unknown hyperparameter 'gama'"),
        ("classical.rbf_svm.C", -1.0, "params.yaml: classical.rbf_svm: "),
        ("classical.pca", 1.5, "params.yaml: classical.rbf_svm: "),
        ("classical.grid.rbf_svm.C", [], "params.yaml: classical.grid.rbf_svm: "),
        ("classical.grid.rbf_svm.gama", [0.1], "params.yaml: classical.grid.rbf_svm: "),
    ],
)
def test_classifier_sections(raw, dotted, value, expected):
    message = components_error(raw, dotted, value, classifiers=["rbf_svm"])
    assert message.startswith(expected)
    assert message.count("classical.") == 1  # the section once, not echoed by the component
    assert dotted.rsplit(".", 1)[1] in message


def test_architecture_sections(raw):
    message = components_error(raw, "cnn.lenet5.kernel", 5, architectures=["lenet5"])
    allowed = (*architectures.get("lenet5").parameters(), "train")
    assert message == f"params.yaml: unknown key 'cnn.lenet5.kernel'; allowed: {', '.join(allowed)}"
    message = components_error(raw, "cnn.alexnet.variant", "huge", architectures=["alexnet"])
    assert message.startswith("params.yaml: cnn.alexnet: ") and "'huge'" in message


@pytest.mark.parametrize(
    "key, value", [("mixed_precision", "maybe"), ("lr_schedule", "step")],
)
def test_training_vocabulary_is_checked_by_the_cnn_stage(raw, key, value):
    message = components_error(raw, f"cnn.{key}", value, architectures=["lenet5"])
    assert message.startswith(f"params.yaml: cnn: {key} = {value!r}: allowed: ")


def test_component_section_prefixes_component_errors(raw):
    from features.errors import ParameterError as FeatureParameterError
    from models.errors import InputError, ParameterError as ModelParameterError

    cfg = parse_config(raw, "mine.yaml")
    for error in (FeatureParameterError("bad value\n  of x"), ModelParameterError("bad value\n  of x")):
        with pytest.raises(ConfigError, match=r"^mine.yaml: features.hog: bad value of x$"):
            with component_section(cfg, "features.hog"):
                raise error
    with pytest.raises(InputError):  # not a params.yaml mistake: passes through
        with component_section(cfg, "features.hog"):
            raise InputError("labels")

"""params.yaml validation: every mistake is one ConfigError line naming key, value, allowed."""
from __future__ import annotations

import copy
import inspect

import pytest
import yaml

from pipeline.config import ARCH_PARAMS, Config, load_config, parse_config, validate_components
from pipeline.errors import ConfigError

from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def with_change(raw: dict, dotted: str, value) -> dict:
    data = copy.deepcopy(raw)
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    return data


def test_default_params_load_and_validate(raw):
    cfg = parse_config(raw)
    assert isinstance(cfg, Config)
    assert cfg.data.dataset == "digits" and cfg.data.image_size == 32
    assert cfg.features.names == ("raw", "sobel", "hog", "sift")
    assert cfg.model_ids()["deep"] == ["lenet5", "alexnet"]
    assert len(cfg.model_ids()["classical"]) == len(cfg.features.names) * len(cfg.classical.classifiers)
    validate_components(cfg)


@pytest.mark.parametrize(
    "dotted, value, expected",
    [
        ("data.image_size", 4, "data.image_size = 4: must be an integer >= 8"),
        ("data.image_size", "big", "data.image_size = 'big': must be an integer"),
        ("data.dataset", "imagenet", "data.dataset = 'imagenet': allowed: digits, mnist, fashion_mnist, cifar10, folder"),
        ("data.channels", 2, "data.channels = 2: allowed: 1, 3"),
        ("data.val_fraction", 1.5, "data.val_fraction = 1.5: must be in (0.0, 1.0)"),
        ("seed", -1, "seed = -1: must be an integer >= 0"),
        ("seed", True, "seed = True: must be an integer"),
        ("features.names", ["hog", "surf"], "unknown name 'surf'; allowed: raw, sobel, hog, sift"),
        ("classical.classifiers", [], "must be a non-empty list"),
        ("cnn.architectures", ["vgg16"], "unknown name 'vgg16'; allowed: lenet5, alexnet"),
        ("cnn.epochs", 0, "cnn.epochs = 0: must be an integer >= 1"),
        ("cnn.mixed_precision", "maybe", "allowed: auto, on, off"),
        ("classical.pca", 1.5, "classical.pca = 1.5: must be null, an integer >= 1"),
        ("features.n_jobs", 0, "features.n_jobs = 0"),
    ],
)
def test_bad_values_name_key_value_and_allowed(raw, dotted, value, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(with_change(raw, dotted, value))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "dotted, message",
    [
        ("colour", "unknown key 'colour'"),
        ("data.size", "unknown key 'data.size'; allowed in 'data': "),
        ("cnn.lenet5.kernel", "unknown key 'cnn.lenet5.kernel'; allowed: activation, pooling, epochs"),
    ],
)
def test_unknown_keys_are_rejected(raw, dotted, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(with_change(raw, dotted, 1))


def test_missing_path_for_file_datasets(raw):
    with pytest.raises(ConfigError, match="dataset 'mnist' needs data.path"):
        parse_config(with_change(raw, "data.dataset", "mnist"))


def test_component_parameters_are_checked(raw):
    cfg = parse_config(with_change(raw, "features.hog.orientation", 12))
    with pytest.raises(ConfigError, match="orientation"):
        validate_components(cfg)
    cfg = parse_config(with_change(raw, "classical.rbf_svm.gama", 0.1))
    with pytest.raises(ConfigError, match=r"params.yaml: classical.rbf_svm: unknown hyperparameter 'gama'"):
        validate_components(cfg)


def test_overrides_apply_and_are_validated(raw):
    cfg = parse_config(raw, overrides={"data.dataset": "folder", "data.path": "imgs"})
    assert (cfg.data.dataset, cfg.data.path) == ("folder", "imgs")
    with pytest.raises(ConfigError, match="data.image_size = 2"):
        parse_config(raw, overrides={"data.image_size": 2})


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: line 1 is not valid YAML|bad.yaml:.* is not valid YAML"):
        load_config(bad)


def test_arch_params_match_the_builders():
    from models import cnn

    for arch, keys in ARCH_PARAMS.items():
        signature = inspect.signature(getattr(cnn, arch)).parameters
        assert set(keys) <= set(signature), f"{arch}: {set(keys) - set(signature)} not builder arguments"


def test_architecture_training_overrides(raw):
    from pipeline.config import for_arch

    data = with_change(raw, "cnn.alexnet.epochs", 3)
    data["cnn"]["alexnet"]["learning_rate"] = 0.0002
    cfg = parse_config(data)
    alexnet = for_arch(cfg, "alexnet")
    assert (alexnet.cnn.epochs, alexnet.cnn.learning_rate) == (3, 0.0002)
    assert "epochs" not in alexnet.cnn.arch_params["alexnet"]  # builder arguments only
    lenet = for_arch(cfg, "lenet5")
    assert (lenet.cnn.epochs, lenet.cnn.learning_rate) == (cfg.cnn.epochs, cfg.cnn.learning_rate)
    with pytest.raises(ConfigError, match=r"cnn.alexnet.epochs = 0: must be an integer >= 1"):
        parse_config(with_change(raw, "cnn.alexnet.epochs", 0))

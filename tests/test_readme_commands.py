"""The README's documented `dvc exp run -S ...` commands name only keys and values that the
configuration and the components they configure accept (a typo there costs a user a 30-minute run)."""
from __future__ import annotations

import re
import shlex

import pytest
import yaml

from helpers import REPO_ROOT
from pipeline.config import load_config


def readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        commands += [line.strip() for line in joined.splitlines() if line.strip().startswith("dvc exp run")]
    return commands


def overrides(command: str) -> dict:
    words = shlex.split(command.split("#")[0])
    pairs = [words[i + 1] for i, word in enumerate(words) if word == "-S"]
    return {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in pairs)}


def large_data_commands() -> list[str]:
    return [c for c in readme_commands() if "data.dataset=" in c]


def test_the_large_data_commands_are_found():
    datasets = {overrides(c)["data.dataset"] for c in large_data_commands()}
    assert {"fashion_mnist", "mnist"} <= datasets


@pytest.mark.parametrize("command", large_data_commands(), ids=lambda c: overrides(c)["data.dataset"])
def test_each_documented_command_configures_valid_components(command):
    from pipeline.features import build_extractor
    from pipeline.train_classical import build_classifier

    settings = overrides(command)
    cfg = load_config(REPO_ROOT / "params.yaml", settings)
    for key, value in settings.items():
        found = lookup(cfg, key)
        assert (list(found) if isinstance(found, tuple) else found) == value, key
    for name in cfg.features.names:
        build_extractor(cfg, name)
    for classifier in cfg.classical.classifiers:
        build_classifier(cfg, classifier)


def lookup(cfg, dotted: str):
    """The validated value of a dotted params key (the config has the file's shape)."""
    node = cfg
    for part in dotted.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node

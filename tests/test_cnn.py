"""models.cnn + models.architectures: registry, shapes, exact parameter counts
(LeCun et al. 1998; Krizhevsky et al. 2012), validation, import hygiene."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from models import architectures, cnn
from models.architectures import alexnet
from models.errors import ParameterError

keras = pytest.importorskip("keras")

MODELS_DIR = Path(cnn.__file__).parent
ALEXNET_LECTURE_WEIGHTS = {  # the lecture's per-layer weights, 227x227x3 and 1000 classes
    "conv1": 34_848,
    "conv2": 614_400,
    "conv3": 884_736,
    "conv4": 1_327_104,
    "conv5": 884_736,
    "fc1": 4_194_304,
    "fc2": 16_777_216,
    "fc3": 4_096_000,
}


def build(name: str, **kwargs):
    return architectures.get(name).build(**kwargs)


def layer_params(model, name: str) -> tuple[int, int]:
    """(weights, biases) of a Conv2D/Dense layer."""
    kernel, bias = model.get_layer(name).get_weights()
    return kernel.size, bias.size


def test_lenet5_lecture_counts():
    model = build("lenet5")
    assert model.name == "lenet5" and model.output_shape == (None, 10)
    assert [model.get_layer(n).output.shape[1:] for n in ("conv1", "pool1", "conv2", "pool2")] == [
        (28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16)
    ]
    assert layer_params(model, "conv1") == (150, 6)
    assert layer_params(model, "conv2") == (2_400, 16)
    assert layer_params(model, "fc1") == (48_000, 120)
    assert sum(layer_params(model, "fc2")) == 10_164
    assert sum(layer_params(model, "fc3")) == 850
    assert cnn.count_params(model) == {"total": 61_706, "trainable": 61_706, "non_trainable": 0}


def test_lenet5_pads_28x28_to_32x32_without_parameters():
    model = build("lenet5", input_shape=(28, 28, 1))
    assert model.get_layer("pad").output.shape == (None, 32, 32, 1)
    assert model.get_layer("conv1").output.shape == (None, 28, 28, 6)
    assert model.count_params() == 61_706
    assert model.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape == (2, 10)


def test_lenet5_resizes_other_sizes_and_keeps_channels():
    model = build("lenet5", input_shape=(64, 48, 3), num_classes=5)
    assert model.get_layer("resize").output.shape == (None, 32, 32, 3)
    assert layer_params(model, "conv1") == (5 * 5 * 3 * 6, 6)
    assert model.output_shape == (None, 5)
    assert model.count_params() == 61_706 + 5 * 5 * 2 * 6 - 5 * 84 - 5


def test_lenet5_tanh_avg_is_the_1998_variant():
    model = build("lenet5", activation="tanh", pooling="avg")
    assert type(model.get_layer("pool1")).__name__ == "AveragePooling2D"
    assert model.get_layer("conv1").get_config()["activation"] == "tanh"
    assert model.get_layer("fc3").get_config()["activation"] == "softmax"
    assert model.count_params() == 61_706


def test_alexnet_lecture_counts():
    model = build("alexnet")
    assert model.input_shape == (None, 227, 227, 3)
    sizes = [model.get_layer(n).output.shape[1] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4",
                                                            "conv5", "pool3")]
    assert sizes == [55, 27, 23, 11, 9, 7, 5, 2]
    assert model.get_layer("flatten").output.shape == (None, 1_024)
    assert {n: layer_params(model, n)[0] for n in ALEXNET_LECTURE_WEIGHTS} == ALEXNET_LECTURE_WEIGHTS
    assert model.count_params() == 28_823_912
    assert model.output_shape == (None, 1000)


def test_alexnet_original_counts():
    model = build("alexnet", variant="original")
    assert model.input_shape == (None, 224, 224, 3)
    sizes = [model.get_layer(n).output.shape[1] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4",
                                                            "conv5", "pool3")]
    assert sizes == [55, 27, 27, 13, 13, 13, 13, 6]
    assert model.get_layer("flatten").output.shape == (None, 9_216)
    assert layer_params(model, "fc1") == (9_216 * 4_096, 4_096)
    assert model.count_params() == 62_378_344


def test_alexnet_resizes_and_replicates_channels_inside_the_model():
    model = build("alexnet", input_shape=(32, 32, 1), num_classes=1000)
    assert model.input_shape == (None, 32, 32, 1)
    assert model.get_layer("resize").output.shape == (None, 227, 227, 1)
    assert model.get_layer("to_rgb").output.shape == (None, 227, 227, 3)
    assert model.count_params() == 28_823_912
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_alexnet_minimum_image_sizes():
    assert alexnet.min_image_size("lecture") == 195
    assert alexnet.min_image_size("original") == 63
    assert build("alexnet", image_size=195).get_layer("pool3").output.shape == (None, 1, 1, 256)
    small = build("alexnet", input_shape=(28, 28, 1), num_classes=10, variant="original", image_size=63)
    assert small.get_layer("pool3").output.shape == (None, 1, 1, 256)


@pytest.mark.parametrize(("variant", "too_small", "minimum"), [("lecture", 194, 195), ("original", 62, 63)])
def test_alexnet_too_small_raises(variant, too_small, minimum):
    with pytest.raises(ParameterError, match=f">= {minimum}"):
        architectures.get("alexnet").layers(variant=variant, image_size=too_small)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("lenet5", {"activation": "sigmoid"}, "allowed: relu, tanh"),
        ("lenet5", {"pooling": "sum"}, "allowed: max, avg"),
        ("lenet5", {"input_shape": (32, 32)}, "input_shape"),
        ("lenet5", {"num_classes": 1}, "num_classes"),
        ("lenet5", {"variant": "lecture"}, "lenet5 takes no variant; allowed: input_shape, num_classes, activation"),
        ("alexnet", {"variant": "vgg"}, "allowed: lecture, original"),
        ("alexnet", {"input_shape": (32, 32, 2)}, "1 or 3 input channels"),
        ("alexnet", {"dropout": 1.0}, "dropout"),
        ("alexnet", {"image_size": 227.0}, "image_size"),
    ],
)
def test_invalid_arguments_raise_parameter_error(name, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        architectures.get(name).layers(**kwargs)


def test_registry_lists_the_modules_and_names_each_entry():
    assert architectures.names() == ("alexnet", "lenet5", "resnet20")
    for name in architectures.names():
        assert architectures.get(name).name == name
    assert architectures.get("alexnet").parameters() == ("variant", "image_size", "dropout")
    assert architectures.get("lenet5").parameters() == ("activation", "pooling")
    assert (architectures.get("lenet5").default_num_classes, architectures.get("alexnet").default_num_classes) == (
        10, 1000)
    assert architectures.get("alexnet").default_input_shape(variant="original") == (224, 224, 3)


def test_unknown_architecture_lists_the_registered_ones():
    with pytest.raises(ParameterError, match=r"^unknown architecture 'vgg16'; allowed: alexnet, lenet5, resnet20$"):
        architectures.get("vgg16")


TOY = '''
"""A toy architecture: one 3x3 convolution and a softmax layer."""
from models.cnn import FC, Architecture, Conv, Flatten, Input, check_input_shape, check_num_classes


def spec(input_shape=(8, 8, 1), num_classes=2, filters=4):
    check_num_classes(num_classes)
    return (Input("input", check_input_shape(input_shape)), Conv("conv1", filters, 3), Flatten("flatten"),
            FC("fc1", num_classes, "softmax"))


ARCHITECTURE = Architecture(spec=spec, citation="nobody 2024", summary="a test network")
'''


def test_a_new_module_is_an_architecture_without_any_other_edit(tmp_path, monkeypatch):
    from models.describe import describe

    (tmp_path / "toy.py").write_text(textwrap.dedent(TOY), encoding="utf-8")
    monkeypatch.setattr(architectures, "__path__", [*architectures.__path__, str(tmp_path)])
    try:
        assert architectures.names() == ("alexnet", "lenet5", "resnet20", "toy")
        toy = architectures.get("toy")
        assert (toy.name, toy.parameters(), toy.default_input_shape()) == ("toy", ("filters",), (8, 8, 1))
        model = toy.build(num_classes=3, filters=2)
        assert model.name == "toy" and model.count_params() == (3 * 3 * 2 + 2) + (6 * 6 * 2 * 3 + 3)
        text = describe("toy", num_classes=3, filters=2)
        assert text.startswith("toy (nobody 2024): input_shape=(8, 8, 1), num_classes=3, filters=2")
        assert "matches Keras count_params() = 239" in text
    finally:
        sys.modules.pop("models.architectures.toy", None)


def test_seed_makes_initial_weights_reproducible():
    def initial_weights(seed: int) -> list[np.ndarray]:
        keras.utils.set_random_seed(seed)
        return build("lenet5").get_weights()

    first, again, other = initial_weights(7), initial_weights(7), initial_weights(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement of ``path`` names (absolute imports; models uses no relative ones)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.append(node.module or "")
    return names


@pytest.mark.parametrize("forbidden", ["pipeline", "tensorflow"])
def test_models_package_does_not_import(forbidden):
    """models/ stands alone (no pipeline/) and uses backend-agnostic Keras only (no tensorflow),
    except models/training.py, whose TensorFlow branches are the TensorFlow backend's own settings."""
    sources = sorted(MODELS_DIR.rglob("*.py"))
    assert len(sources) >= 9
    for path in sources:
        if forbidden == "tensorflow" and path.name == "training.py":
            continue
        offending = [name for name in imported_modules(path) if name.split(".")[0] == forbidden]
        assert not offending, f"{path.relative_to(MODELS_DIR.parent)} imports {offending}"


def test_importing_the_registry_and_specs_does_not_import_keras_or_the_modules():
    code = ("import sys, models.cnn, models.describe, models.training, models.architectures as a; a.names(); "
            "assert 'keras' not in sys.modules, 'keras imported'; "
            "assert not [m for m in sys.modules if m.startswith('models.architectures.')], 'a module imported'; "
            "a.get('lenet5'); assert 'models.architectures.alexnet' not in sys.modules; "
            "assert 'keras' not in sys.modules, 'keras imported by get'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=MODELS_DIR.parent)

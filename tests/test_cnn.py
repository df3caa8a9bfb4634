"""models/cnn.py: shapes, exact parameter counts (LeCun et al. 1998; Krizhevsky et al. 2012), validation."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import cnn
from pipeline.errors import ConfigError

keras = pytest.importorskip("keras")

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


def layer_params(model, name: str) -> tuple[int, int]:
    """(weights, biases) of a Conv2D/Dense layer."""
    kernel, bias = model.get_layer(name).get_weights()
    return kernel.size, bias.size


def test_lenet5_lecture_counts():
    model = cnn.lenet5()
    assert model.output_shape == (None, 10)
    assert [model.get_layer(n).output.shape[1:] for n in ("conv1", "pool1", "conv2", "pool2")] == [
        (28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16)
    ]
    assert layer_params(model, "conv1") == (150, 6)
    assert layer_params(model, "conv2") == (2_400, 16)
    assert sum(layer_params(model, "fc1")) == 48_120 == 400 * 120 + 120
    assert sum(layer_params(model, "fc2")) == 10_164
    assert sum(layer_params(model, "fc3")) == 850
    assert model.count_params() == 61_706
    assert cnn.count_params(model) == {"total": 61_706, "trainable": 61_706, "non_trainable": 0}


def test_lenet5_pads_28x28_to_32x32_without_parameters():
    model = cnn.lenet5(input_shape=(28, 28, 1))
    assert model.get_layer("pad").output.shape == (None, 32, 32, 1)
    assert model.get_layer("conv1").output.shape == (None, 28, 28, 6)
    assert model.count_params() == 61_706
    assert model.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape == (2, 10)


def test_lenet5_resizes_other_sizes_and_keeps_channels():
    model = cnn.lenet5(input_shape=(64, 48, 3), num_classes=5)
    assert model.get_layer("resize").output.shape == (None, 32, 32, 3)
    assert layer_params(model, "conv1") == (5 * 5 * 3 * 6, 6)
    assert model.output_shape == (None, 5)
    assert model.count_params() == 61_706 + 5 * 5 * 2 * 6 - 5 * 84 - 5


def test_lenet5_tanh_avg_is_the_1998_variant():
    model = cnn.lenet5(activation="tanh", pooling="avg")
    assert type(model.get_layer("pool1")).__name__ == "AveragePooling2D"
    assert model.get_layer("conv1").get_config()["activation"] == "tanh"
    assert model.get_layer("fc3").get_config()["activation"] == "softmax"
    assert model.count_params() == 61_706


def test_alexnet_lecture_counts():
    model = cnn.alexnet()
    assert model.input_shape == (None, 227, 227, 3)
    sizes = [model.get_layer(n).output.shape[1] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4",
                                                            "conv5", "pool3")]
    assert sizes == [55, 27, 23, 11, 9, 7, 5, 2]
    assert model.get_layer("flatten").output.shape == (None, 1_024)
    assert {n: layer_params(model, n)[0] for n in ALEXNET_LECTURE_WEIGHTS} == ALEXNET_LECTURE_WEIGHTS
    assert sum(ALEXNET_LECTURE_WEIGHTS.values()) == 28_813_344
    assert model.count_params() == 28_823_912
    assert model.output_shape == (None, 1000)


def test_alexnet_original_counts():
    model = cnn.alexnet(variant="original")
    assert model.input_shape == (None, 224, 224, 3)
    sizes = [model.get_layer(n).output.shape[1] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4",
                                                            "conv5", "pool3")]
    assert sizes == [55, 27, 27, 13, 13, 13, 13, 6]
    assert model.get_layer("flatten").output.shape == (None, 9_216)
    assert layer_params(model, "fc1") == (9_216 * 4_096, 4_096)
    assert model.count_params() == 62_378_344


def test_alexnet_resizes_and_replicates_channels_inside_the_model():
    model = cnn.alexnet(input_shape=(32, 32, 1), num_classes=1000)
    assert model.input_shape == (None, 32, 32, 1)
    assert model.get_layer("resize").output.shape == (None, 227, 227, 1)
    assert model.get_layer("to_rgb").output.shape == (None, 227, 227, 3)
    assert model.count_params() == 28_823_912
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_alexnet_minimum_image_sizes():
    assert cnn.alexnet_min_image_size("lecture") == 195
    assert cnn.alexnet_min_image_size("original") == 63
    assert cnn.alexnet(image_size=195).get_layer("pool3").output.shape == (None, 1, 1, 256)
    small = cnn.alexnet(input_shape=(28, 28, 1), num_classes=10, variant="original", image_size=63)
    assert small.get_layer("pool3").output.shape == (None, 1, 1, 256)


@pytest.mark.parametrize(("variant", "too_small", "minimum"), [("lecture", 194, 195), ("original", 62, 63)])
def test_alexnet_too_small_raises(variant, too_small, minimum):
    with pytest.raises(ConfigError, match=f">= {minimum}"):
        cnn.alexnet(variant=variant, image_size=too_small)


@pytest.mark.parametrize(
    ("builder", "kwargs", "message"),
    [
        (cnn.lenet5, {"activation": "sigmoid"}, "allowed: relu, tanh"),
        (cnn.lenet5, {"pooling": "sum"}, "allowed: max, avg"),
        (cnn.lenet5, {"input_shape": (32, 32)}, "input_shape"),
        (cnn.lenet5, {"num_classes": 1}, "num_classes"),
        (cnn.alexnet, {"variant": "vgg"}, "allowed: lecture, original"),
        (cnn.alexnet, {"input_shape": (32, 32, 2)}, "1 or 3 input channels"),
        (cnn.alexnet, {"dropout": 1.0}, "dropout"),
        (cnn.alexnet, {"image_size": 227.0}, "image_size"),
    ],
)
def test_invalid_arguments_raise_config_error(builder, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        builder(**kwargs)


def test_seed_makes_initial_weights_reproducible():
    def initial_weights(seed: int) -> list[np.ndarray]:
        keras.utils.set_random_seed(seed)
        return cnn.lenet5().get_weights()

    first, again, other = initial_weights(7), initial_weights(7), initial_weights(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_models_package_imports_no_tensorflow():
    for path in Path(cnn.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(name.split(".")[0] == "tensorflow" for name in names), path


def test_importing_cnn_does_not_import_keras():
    code = "import sys, models.cnn, models.describe; assert 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(cnn.__file__).parents[1])

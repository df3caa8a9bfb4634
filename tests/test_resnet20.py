"""models/architectures/resnet20.py: He et al. 2016's CIFAR-10 ResNet with option A shortcuts,
its exact parameter table, and the residual building blocks of models/cnn.py."""
from __future__ import annotations

import numpy as np
import pytest

from models import architectures
from models.describe import describe, layer_table
from models.errors import ParameterError

keras = pytest.importorskip("keras")


def paper_count(n: int, width: int = 16, classes: int = 10, channels: int = 3) -> tuple[int, int]:
    """(trained, batch-norm moving statistics) of He et al.'s CIFAR ResNet-(6n+2), by the
    standard formulas: a 3x3 conv from C to K channels has 9CK weights (no bias before batch
    norm), batch norm over K channels trains 2K (gamma, beta) and keeps 2K statistics, the
    option-A shortcuts have none, the output layer has 4*width*classes weights + classes biases."""
    convs = [(channels, width)]  # conv1
    previous = width
    for stage in range(3):
        filters = width * 2 ** stage
        for _ in range(n):
            convs += [(previous, filters), (filters, filters)]
            previous = filters
    trained = sum(9 * c * k + 2 * k for c, k in convs) + previous * classes + classes
    return trained, sum(2 * k for _, k in convs)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return architectures.get("resnet20").build()


def test_parameters_are_the_papers_0_27_million(model):
    trained, statistics = paper_count(3)
    assert (trained, statistics) == (269_722, 1_376)
    assert round(trained / 1e6, 2) == 0.27  # He et al. 2016, Table 6
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (trainable, model.count_params()) == (trained, trained + statistics)
    conv_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(conv_layers) + len(dense_layers) == 20  # 6n + 2 layers with weights


@pytest.mark.parametrize("n, millions", [(5, 0.46), (7, 0.66), (9, 0.85), (18, 1.7)])
def test_deeper_cifar_resnets_have_the_papers_counts(n, millions):
    rows = layer_table("resnet20", blocks=n)
    trained = sum(row["weights"] + row["biases"] for row in rows)
    assert trained == paper_count(n)[0]
    assert round(trained / 1e6, 2 if n < 18 else 1) == millions  # ResNet-32, 44, 56, 110 in Table 6
    assert rows[-1]["total"] == sum(paper_count(n))


def test_describe_prints_every_layer_and_the_total_keras_counts(model):
    text = describe("resnet20")
    assert text.startswith("resnet20 (He et al. 2016): input_shape=(32, 32, 3), num_classes=10, blocks=3, ")
    names = [line.split()[0] for line in text.splitlines()[3:] if line and not line[0].isupper()]
    for block in ("stage2_block1", "stage3_block3"):
        assert {f"{block}_conv1", f"{block}_bn1", f"{block}_relu1", f"{block}_conv2", f"{block}_bn2", f"{block}_add",
                f"{block}_relu2"} <= set(names)
    assert "stage2_block1_shortcut" in names and "stage1_block1_shortcut" not in names  # identity where shapes agree
    assert "matches Keras count_params() = 271,098" in text and "Trainable: 269,722" in text
    row = next(line for line in text.splitlines() if line.startswith("stage3_block1_conv1 "))
    assert row.split()[2:9] == ["8×8×64", "3", "2", "1", "18,432", "0", "18,432"]  # 16x16 -> 8x8, 3*3*32*64
    assert [model.get_layer(name).output.shape[1:] for name in ("stage1_block3_add", "stage2_block1_conv1",
                                                                "stage3_block3_relu2", "pool")] == [
        (32, 32, 16), (16, 16, 32), (8, 8, 64), (64,)]


def outputs(model, names: list[str], x: np.ndarray) -> list[np.ndarray]:
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    return [np.asarray(a) for a in probe(x, training=False)]


def test_shortcuts_are_identity_or_option_a(model):
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    block_in, branch, added, down_in, shortcut = outputs(model, [
        "stage1_block1_relu2", "stage1_block2_bn2", "stage1_block2_add", "stage1_block3_relu2",
        "stage2_block1_shortcut"], x)
    np.testing.assert_allclose(added, branch + block_in, rtol=1e-5, atol=1e-5)  # identity
    # option A: every second pixel of the block's input, the 16 new channels zero
    np.testing.assert_array_equal(shortcut[..., :16], down_in[:, ::2, ::2, :])
    assert shortcut.shape == (2, 16, 16, 32) and not shortcut[..., 16:].any()


def test_he_initialisation_no_conv_bias_and_weight_decay(model):
    conv = model.get_layer("stage2_block2_conv1")
    assert len(conv.get_weights()) == 1  # batch norm's beta is the shift
    assert type(conv.kernel_initializer).__name__ == "HeNormal"
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    x = np.zeros((1, 32, 32, 3), np.float32)
    model(x)
    decay = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    # SGD decay 1e-4 = the gradient of 1e-4 / 2 * |w|^2
    assert decay == pytest.approx(1e-4 / 2 * sum(float(np.sum(np.square(k))) for k in kernels), rel=1e-4)
    plain = architectures.get("resnet20").build(weight_decay=0.0)
    plain(x)
    assert not plain.losses


def test_other_shapes_and_channels_need_no_resizing():
    rows = layer_table("resnet20", input_shape=(28, 28, 1), num_classes=3)
    assert [r["output_shape"] for r in rows if r["name"] in ("stage2_block1_add", "stage3_block1_add", "fc")] == [
        (14, 14, 32), (7, 7, 64), (3,)]
    assert rows[1]["weights"] == 3 * 3 * 1 * 16


def test_saved_model_loads_without_custom_code(model, tmp_path):
    path = tmp_path / "resnet20.keras"
    model.save(path)
    x = np.random.default_rng(2).random((2, 32, 32, 3), dtype=np.float32)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"blocks": 0}, "blocks"), ({"blocks": 2.0}, "blocks"), ({"width": True}, "width"),
     ({"weight_decay": -1e-4}, "weight_decay"), ({"weight_decay": "1e-4"}, "weight_decay"),
     ({"depth": 20}, "takes no depth")],
)
def test_invalid_arguments_raise_parameter_error(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        architectures.get("resnet20").layers(**kwargs)

"""models/describe.py: the lecture's tables, computed from the specs and checked against Keras."""
from __future__ import annotations

import pytest

from models import architectures, cnn
from models.describe import TableMismatchError, describe, layer_table
from models.errors import ParameterError

pytest.importorskip("keras")


def sizes(rows: list[dict], kinds: tuple[str, ...] = ("conv", "pool")) -> list[int]:
    return [row["output_shape"][0] for row in rows if row["kind"] in kinds]


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {row["name"]: row for row in rows}


def test_lenet5_table_matches_the_lecture():
    rows = layer_table("lenet5")
    assert sizes(rows) == [28, 14, 10, 5]
    table = by_name(rows)
    assert (table["conv1"]["weights"], table["conv1"]["biases"]) == (150, 6)
    assert table["conv1"]["dense_equivalent"] == 32 * 32 * 28 * 28 * 6 == 4_816_896
    assert (table["conv2"]["weights"], table["conv2"]["biases"]) == (2_400, 16)
    assert table["conv2"]["dense_equivalent"] == 14 * 14 * 6 * 10 * 10 * 16 == 1_881_600
    assert table["flatten"]["output_shape"] == (400,)
    assert [table[n]["params"] for n in ("fc1", "fc2", "fc3")] == [48_120, 10_164, 850]
    assert rows[-1]["total"] == 61_706
    assert table["pool1"]["dense_equivalent"] is None and table["pool1"]["params"] == 0


def test_lenet5_describe_text():
    text = describe("lenet5")
    assert text.startswith("lenet5 (LeCun et al. 1998): input_shape=(32, 32, 1), num_classes=10, ")
    lines = text.splitlines()
    header = lines[2]
    assert header.split() == ["Layer", "Kind", "Output", "F", "S", "P", "Weights", "Biases", "Params", "Total",
                              "Dense", "equiv."]
    conv1 = next(line for line in lines if line.startswith("conv1 "))
    assert conv1.split() == ["conv1", "conv", "28×28×6", "5", "1", "0", "150", "6", "156", "156", "4,816,896"]
    # numbers are right-aligned under their header: the row's total ends where "Total" ends
    assert conv1.index("156 ", conv1.index("156") + 1) + 3 == header.index("Total") + len("Total")
    for figure in ("150", "2,400", "48,120", "10,164", "850", "61,706", "4,816,896", "1,881,600"):
        assert figure in text
    assert "28×28×6" in text and "5×5×16" in text
    assert "matches Keras count_params() = 61,706" in text
    assert "84 × 10 + 10 = 850" in text


def test_lenet5_28x28_table_has_a_pad_row():
    rows = layer_table("lenet5", input_shape=(28, 28, 1))
    assert rows[1] == {**rows[1], "name": "pad", "kind": "pad", "output_shape": (32, 32, 1), "P": 2, "params": 0}
    assert sizes(rows) == [28, 14, 10, 5]
    assert rows[-1]["total"] == 61_706


def test_alexnet_lecture_table_matches_the_lecture():
    rows = layer_table("alexnet")
    assert sizes(rows) == [55, 27, 23, 11, 9, 7, 5, 2]
    table = by_name(rows)
    assert table["flatten"]["output_shape"] == (1_024,)
    weights = [table[n]["weights"] for n in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "fc3")]
    assert weights == [34_848, 614_400, 884_736, 1_327_104, 884_736, 4_194_304, 16_777_216, 4_096_000]
    assert sum(row["weights"] for row in rows) == 28_813_344
    assert rows[-1]["total"] == 28_823_912


def test_alexnet_lecture_describe_text():
    text = describe("alexnet", variant="lecture")
    for figure in ("34,848", "614,400", "884,736", "1,327,104", "4,194,304", "16,777,216", "4,096,000",
                   "28,813,344", "28,823,912", "27.55M"):
        assert figure in text
    assert "55×55×96" in text and "2×2×256" in text and "1,024" in text
    assert "omits the biases" in text
    assert "matches Keras count_params() = 28,823,912" in text


def test_alexnet_title_shows_the_effective_image_size():
    assert describe("alexnet", variant="original").splitlines()[0] == (
        "alexnet (Krizhevsky et al. 2012): input_shape=(224, 224, 3), num_classes=1000, variant='original', "
        "image_size=224, dropout=0.5")


def test_alexnet_original_table():
    rows = layer_table("alexnet", variant="original")
    assert sizes(rows) == [55, 27, 27, 13, 13, 13, 13, 6]
    assert [row["P"] for row in rows if row["kind"] == "conv"] == [2, 2, 1, 1, 1]
    assert rows[-1]["total"] == 62_378_344
    assert "27.55M" not in describe("alexnet", variant="original")


def test_alexnet_table_shows_resize_and_channel_replication():
    rows = layer_table("alexnet", input_shape=(32, 32, 1), num_classes=10)
    assert [(r["kind"], r["output_shape"]) for r in rows[:3]] == [
        ("input", (32, 32, 1)), ("resize", (227, 227, 1)), ("replicate", (227, 227, 3))
    ]
    assert rows[-1]["total"] == 28_823_912 - 990 * 4_097


@pytest.mark.parametrize(
    ("arch", "kwargs"),
    [
        ("lenet5", {}),
        ("lenet5", {"input_shape": (28, 28, 1), "num_classes": 2}),
        ("lenet5", {"input_shape": (64, 48, 3), "num_classes": 47, "activation": "tanh", "pooling": "avg"}),
        ("alexnet", {"input_shape": (32, 32, 3), "num_classes": 10}),
        ("alexnet", {"input_shape": (28, 28, 1), "num_classes": 10, "image_size": 195}),
        ("alexnet", {"input_shape": (28, 28, 1), "num_classes": 10, "variant": "original", "image_size": 63}),
        ("alexnet", {"input_shape": (96, 96, 3), "num_classes": 100, "variant": "original", "image_size": 227}),
    ],
)
def test_running_total_equals_keras_count_params(arch, kwargs):
    rows = layer_table(arch, **kwargs)
    model = architectures.get(arch).build(**kwargs)
    assert rows[-1]["total"] == model.count_params()
    for row in rows:
        assert tuple(model.get_layer(row["name"]).output.shape[1:]) == row["output_shape"]
    assert "matches Keras count_params()" in describe(arch, **kwargs)


def test_describe_accepts_cli_style_none_arguments():
    assert describe("lenet5", input_shape=None, num_classes=None) == describe("lenet5")


def test_describe_raises_when_keras_disagrees(monkeypatch):
    def eleven_classes(self, *args, **kwargs):
        return cnn.build(self.layers(num_classes=11), self.name)

    monkeypatch.setattr(cnn.Architecture, "build", eleven_classes)
    with pytest.raises(TableMismatchError, match="fc3"):
        describe("lenet5")


@pytest.mark.parametrize(
    ("arch", "kwargs", "message"),
    [
        ("vgg16", {}, "allowed: alexnet, lenet5"),
        ("lenet5", {"variant": "original"}, "lenet5 takes no variant"),
        ("alexnet", {"image_size": 194}, "195"),
    ],
)
def test_bad_arguments_raise_parameter_error(arch, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        layer_table(arch, **kwargs)

"""pipeline.train_cnn (the real stage, TensorFlow + MLflow on a temporary sqlite store) and models.training."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.config import parse_config
from pipeline.errors import ConfigError
from pipeline.io import save_split

from helpers import COUNTS, N_CLASSES, REPO_ROOT, SIZE, make_split, new_mlflow_store


def make_config(seed: int = 42, alexnet: dict | None = None, **cnn):
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["seed"] = seed
    raw["mlflow"]["experiment"] = "test-train-cnn"
    raw["cnn"].update({"epochs": 1, "batch_size": 16, "patience": 2, "mixed_precision": "off",
                       "deterministic": True, **cnn})
    raw["cnn"]["alexnet"]["image_size"] = 63  # smallest size for the "original" variant
    raw["cnn"]["alexnet"].update(alexnet or {})
    return parse_config(raw)


def in_workdir(mp: pytest.MonkeyPatch, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    save_split(workdir / "data/prepared/split.npz", make_split())
    mp.chdir(workdir)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    mp.setenv("CVD_PIPELINE_RUN", "test-train-cnn")


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    """One 1-epoch LeNet-5 run through the real stage, shared by the assertions below."""
    from pipeline import train_cnn

    workdir = tmp_path_factory.mktemp("stage")
    new_mlflow_store(workdir)
    with pytest.MonkeyPatch.context() as mp:
        in_workdir(mp, workdir)
        result = train_cnn.run(make_config(), "lenet5")
    return workdir, result


@pytest.mark.slow
def test_stage_writes_model_metrics_and_plots(lenet_run):
    import keras

    from models.cnn import count_params

    workdir, result = lenet_run
    model = keras.saving.load_model(workdir / "artifacts/cnn/lenet5.keras")
    assert model.output_shape == (None, N_CLASSES)
    scores = json.loads((workdir / "metrics/cnn/lenet5.json").read_text())
    # the bands are separable after one epoch (1.0 on this CPU for seeds 1, 2, 3, 7, 42); chance is 1/3
    assert scores["test_accuracy"] >= 0.9 and scores["val_accuracy"] >= 0.9
    assert scores["param_count"] == count_params(model)["total"] == 61_706 - 7 * 85  # fc3: 3 classes, not 10
    assert scores["trainable_params"] == scores["param_count"]
    assert scores["epochs_run"] == scores["best_epoch"] == 1
    info = json.loads((workdir / "metrics/cnn/lenet5.run.json").read_text())
    assert info["device"] == "cpu" and info["gpu_count"] == 0 and info["mixed_precision"] is False
    assert info["backend"] == keras.backend.backend()
    assert info["fit_seconds"] > 0 and info["epoch_seconds"] > 0 and info["predict_images_per_s"] > 0
    assert info["mlflow_run_id"] == result["mlflow_run_id"]

    with open(workdir / "plots/history/lenet5.csv", newline="") as fh:
        history = list(csv.DictReader(fh))
    assert list(history[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                "learning_rate", "epoch_seconds", "test_accuracy"]
    assert [row["epoch"] for row in history] == ["1"]
    assert float(history[0]["learning_rate"]) == pytest.approx(0.001)
    assert float(history[0]["val_accuracy"]) == scores["val_accuracy"]
    assert float(history[0]["test_accuracy"]) == scores["test_accuracy"]  # the kept epoch's: the same weights

    with open(workdir / "plots/confusion/lenet5.csv", newline="") as fh:
        confusion = list(csv.DictReader(fh))
    assert len(confusion) == N_CLASSES * COUNTS["test"]
    assert (workdir / "plots/confusion/lenet5.png").stat().st_size > 0
    assert (workdir / "plots/per_class/lenet5.csv").is_file()
    assert not list((workdir / "artifacts/cnn").glob(".*")), "temporary file left behind"


@pytest.mark.slow
def test_saved_model_reproduces_the_test_predictions(lenet_run):
    import keras

    from models.training import scale_images

    workdir, result = lenet_run
    model = keras.saving.load_model(workdir / "artifacts/cnn/lenet5.keras")
    assert getattr(model, "optimizer", None) is None, "the artifact is inference-only"
    split = make_split()
    y_pred = model.predict(scale_images(split.x["test"]), verbose=0).argmax(axis=1)
    assert np.mean(y_pred == split.y["test"]) == pytest.approx(result["test_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_stage_writes_per_image_probabilities_and_intervals(lenet_run):
    import keras

    from models.training import scale_images
    from pipeline import read_results

    workdir, result = lenet_run
    scores = json.loads((workdir / "metrics/cnn/lenet5.json").read_text())
    n_test = N_CLASSES * COUNTS["test"]
    assert scores["n_test"] == n_test and scores["score_kind"] == "probability"
    assert scores["test_accuracy_ci_low"] < scores["test_accuracy"] <= scores["test_accuracy_ci_high"]
    assert scores["macro_f1_ci_low"] <= scores["macro_f1"] <= scores["macro_f1_ci_high"]
    for key in ("test_accuracy_ci_low", "test_accuracy_ci_high", "macro_f1_ci_low", "macro_f1_ci_high", "n_test"):
        assert result[key] == scores[key], key
    split = make_split()
    model = keras.saving.load_model(workdir / "artifacts/cnn/lenet5.keras")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        found = {part: read_results.read_predictions("lenet5", part) for part in ("val", "test")}
    for part, p in found.items():
        assert len(p) == len(split.y[part]) and p.index.tolist() == list(range(len(split.y[part])))
        assert p.y_true.tolist() == split.y[part].tolist() and p.score_kind == "probability"
        assert p.scores.shape == (len(split.y[part]), N_CLASSES)
        assert np.allclose(p.scores.sum(axis=1), 1.0, atol=1e-5)
        assert np.array_equal(p.scores.argmax(axis=1), p.y_pred)
        assert np.allclose(p.scores, model.predict(scale_images(split.x[part]), verbose=0), atol=1e-5)
    assert np.mean(found["test"].correct) == pytest.approx(scores["test_accuracy"], abs=1e-6)
    assert np.mean(found["val"].correct) == pytest.approx(scores["val_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_mlflow_run_has_tags_metrics_step_history_and_model(lenet_run):
    import mlflow

    workdir, result = lenet_run
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["test-train-cnn"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert (tags["approach"], tags["arch"], tags["model"], tags["stage"]) == ("deep", "lenet5", "lenet5", "train_cnn")
    assert tags["device"] == "cpu" and tags["dataset"] == "synthetic"
    for key in ("test_accuracy", "param_count", "fit_seconds", "epoch_seconds", "predict_images_per_s",
                "val_accuracy", "epochs_run"):
        assert key in metrics, key
    assert metrics["test_accuracy"] == result["test_accuracy"]
    assert metrics["val_accuracy"] == result["val_accuracy"]
    assert (params["epochs"], params["batch_size"], params["gpu_count"], params["activation"]) == ("1", "16", "0", "relu")
    # params.yaml's `auto` as it was resolved for this grayscale data: the augmentation the run had
    assert (params["augment.horizontal_flip"], params["augment.max_shift"]) == ("False", "0")

    client = mlflow.MlflowClient()
    history = client.get_metric_history(run.info.run_id, "history.val_accuracy")
    assert [m.step for m in history] == [1]
    assert history[0].value == result["val_accuracy"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/lenet5.csv" in artifacts  # the history CSV (and the confusion CSV of the same name)
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.predict(np.zeros((2, SIZE, SIZE, 1), np.float32)).shape == (2, N_CLASSES)


def test_unknown_arch_is_the_registry_error(tmp_path, monkeypatch):
    from models.errors import ParameterError
    from pipeline import train_cnn

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParameterError, match=r"^unknown architecture 'vgg16'; allowed: alexnet, lenet5, resnet20$"):
        train_cnn.run(make_config(), "vgg16")


def test_bad_architecture_parameter_names_the_params_key(tmp_path, monkeypatch):
    from pipeline import train_cnn

    in_workdir(monkeypatch, tmp_path)
    with pytest.raises(ConfigError, match=r"^params.yaml: cnn.alexnet: .*image_size >= 63"):
        train_cnn.run(make_config(alexnet={"image_size": 32}), "alexnet")
    assert not (tmp_path / "mlflow.db").exists(), "no MLflow run for a configuration error"


# --- models.training --------------------------------------------------------------------------

@pytest.mark.parametrize(("setting", "gpus", "policy"), [
    ("auto", 0, "float32"), ("auto", 1, "mixed_float16"), ("auto", 8, "mixed_float16"),
    ("on", 0, "mixed_float16"), ("on", 2, "mixed_float16"), ("off", 0, "float32"), ("off", 4, "float32"),
    ("bfloat16", 0, "mixed_bfloat16"), ("bfloat16", 2, "mixed_bfloat16"),
])
def test_choose_precision(setting, gpus, policy):
    from models.training import choose_precision

    assert choose_precision(setting, gpus) == policy


def test_choose_precision_rejects_unknown_setting():
    from models.errors import ParameterError
    from models.training import choose_precision

    with pytest.raises(ParameterError, match="allowed: auto, on, off, bfloat16"):
        choose_precision("fp16", 1)


def test_device_detection_reports_cpu_here():
    import tensorflow as tf

    from models.training import Devices, detect_devices

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    devices = detect_devices()
    assert (devices.label, devices.gpu_count, devices.gpu_names) == ("cpu", 0, ())
    assert Devices("tensorflow", ("NVIDIA H100", "NVIDIA H100")).label == "gpu:NVIDIA H100 x2"
    assert Devices("jax", ("A", "B")).label == "gpu:A x1+B x1"


def test_mixed_precision_keeps_a_float32_output_and_restores_the_policy():
    import keras

    from models import architectures
    from models.cnn import count_params
    from models.training import Devices, compile_model, runtime

    with runtime(Devices("tensorflow"), seed=0, precision="on") as rt:
        assert rt.mixed_precision and keras.mixed_precision.global_policy().name == "mixed_float16"
        with rt.scope():
            model = compile_model(architectures.get("lenet5").build((28, 28, 1), 10), learning_rate=0.001)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.get_layer("fc3").compute_dtype == "float32"
    assert keras.backend.standardize_dtype(model.output.dtype) == "float32"
    assert count_params(model)["total"] == 61_706  # the lecture's LeNet-5, unchanged by the dtype fix
    out = model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
    assert out.dtype == np.float32 and out.shape == (2, 10)


def _train_and_predict(cfg, split) -> tuple[np.ndarray, list[dict]]:
    """LeNet-5 through the stage's config glue (runtime, build_model, fit_model)."""
    from models.training import Devices, scale_images
    from pipeline.cnn_training import build_model, fit_model, runtime

    with runtime(cfg, Devices("tensorflow")) as rt:
        model = build_model(cfg, "lenet5", split.image_shape, split.num_classes, steps_per_epoch=4, rt=rt)
        fit = fit_model(cfg, "lenet5", model, scale_images(split.x["train"]), split.y["train"],
                        scale_images(split.x["val"]), split.y["val"], verbose=0)
        return model.predict(scale_images(split.x["test"]), verbose=0), fit.history


@pytest.mark.slow
def test_same_seed_gives_the_same_predictions_after_one_epoch():
    split = make_split()
    first, _ = _train_and_predict(make_config(), split)
    second, _ = _train_and_predict(make_config(), split)
    np.testing.assert_array_equal(first, second)  # bitwise: CPU + op determinism
    other, _ = _train_and_predict(make_config(seed=7), split)
    assert not np.array_equal(first, other)


@pytest.mark.slow
def test_cosine_schedule_lowers_the_learning_rate_each_epoch():
    _, history = _train_and_predict(make_config(epochs=3, patience=5, lr_schedule="cosine"), make_split())
    rates = [row["learning_rate"] for row in history]
    assert len(history) == 3 and rates[0] == pytest.approx(0.001)
    assert rates[0] > rates[1] > rates[2] > 0
    assert all(math.isfinite(row["val_loss"]) for row in history)


def test_alexnet_builds_at_its_minimum_size():
    from models.cnn import count_params
    from models.training import Devices
    from pipeline.cnn_training import build_model, runtime

    cfg = make_config()
    with runtime(cfg, Devices("tensorflow")) as rt:
        model = build_model(cfg, "alexnet", (SIZE, SIZE, 1), N_CLASSES, steps_per_epoch=1, rt=rt)
    assert model.get_layer("resize").output.shape[1:3] == (63, 63)
    assert count_params(model)["total"] == model.count_params()
    assert model.predict(np.zeros((1, SIZE, SIZE, 1), np.float32), verbose=0).shape == (1, N_CLASSES)


@pytest.mark.slow
def test_bfloat16_setting_trains_in_bfloat16_with_a_float32_output():
    """``cnn.mixed_precision: bfloat16`` through the stage's glue: the layers compute in bfloat16
    on this CPU, the softmax in float32, and one epoch trains to a finite loss."""
    from models.training import Devices, scale_images
    from pipeline.cnn_training import build_model, fit_model, runtime

    cfg, split = make_config(mixed_precision="bfloat16"), make_split()
    with runtime(cfg, Devices("tensorflow")) as rt:
        assert rt.mixed_precision and rt.precision == "mixed_bfloat16"
        model = build_model(cfg, "lenet5", split.image_shape, split.num_classes, steps_per_epoch=4, rt=rt)
        fit = fit_model(cfg, "lenet5", model, scale_images(split.x["train"]), split.y["train"],
                        scale_images(split.x["val"]), split.y["val"], verbose=0)
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("fc3").compute_dtype == "float32"
    assert math.isfinite(fit.history[0]["loss"])
    out = model.predict(scale_images(split.x["test"][:4]), verbose=0)
    assert out.dtype == np.float32 and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)


def test_training_state_built_first_learns_the_same_weights():
    """The optimizer's and metrics' variables made before the first step (one trace of the train
    step instead of two) start where Keras would make them: a step trains the same weights."""
    import keras

    from models import architectures
    from models.training import Devices, build_training_state, compile_model, runtime, scale_images

    split = make_split()
    x, y = scale_images(split.x["train"][:16]), split.y["train"][:16]
    weights = []
    for build_first in (True, False):
        with runtime(Devices("tensorflow"), seed=3, precision="off"):
            model = compile_model(architectures.get("lenet5").build(split.image_shape, split.num_classes),
                                  learning_rate=0.01)
            if build_first:
                build_training_state(model, x, y)
                assert model.optimizer.built and len(model.optimizer.variables) > len(model.trainable_variables)
                assert all(metric.variables for metric in model.metrics)
            model.train_on_batch(x, y)
            weights.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.slow
def test_multi_gpu_path_trains_under_mirrored_strategy():
    """The >1-GPU branch on this CPU: MirroredStrategy (over the devices TensorFlow has) wraps
    the build, ``auto`` switches to mixed float16, and one epoch trains to a finite loss."""
    import keras
    import tensorflow as tf

    from models import architectures
    from models.training import Devices, compile_model, fit, runtime, scale_images

    split = make_split()
    with runtime(Devices("tensorflow", ("simulated", "simulated")), seed=42, precision="auto") as rt:
        assert isinstance(rt.strategy, tf.distribute.MirroredStrategy)
        assert rt.precision == "mixed_float16"
        with rt.scope():
            model = compile_model(architectures.get("lenet5").build(split.image_shape, split.num_classes),
                                  learning_rate=0.001)
        assert isinstance(model.get_layer("conv1").kernel.value, tf.distribute.DistributedValues)
        result = fit(model, scale_images(split.x["train"]), split.y["train"], scale_images(split.x["val"]),
                     split.y["val"], epochs=1, batch_size=16, patience=2, verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored on exit
    assert result.epochs_run == 1 and math.isfinite(result.history[0]["loss"])
    out = model.predict(scale_images(split.x["test"][:4]), verbose=0)
    assert out.dtype == np.float32 and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)


@pytest.mark.slow
def test_augmentation_is_seeded_and_changes_what_is_learned():
    split = make_split()
    augment = {"horizontal_flip": True, "max_shift": 2}
    first, history = _train_and_predict(make_config(augment=augment), split)
    second, _ = _train_and_predict(make_config(augment=augment), split)
    plain, _ = _train_and_predict(make_config(), split)
    np.testing.assert_array_equal(first, second)  # the augmented batches follow from `seed`
    assert not np.array_equal(first, plain)
    assert len(history) == 1 and math.isfinite(history[0]["val_loss"])


def test_bad_augmentation_setting_names_the_params_key():
    with pytest.raises(ConfigError, match=r"cnn\.augment\.max_shift"):
        make_config(augment={"horizontal_flip": False, "max_shift": -1})


def test_bad_monitor_is_named_by_the_config_and_by_training():
    from models.errors import ParameterError
    from models.training import fit

    with pytest.raises(ConfigError, match=r"cnn\.monitor"):
        make_config(monitor="val_f1")
    with pytest.raises(ParameterError, match="monitor = 'accuracy': allowed: val_loss, val_accuracy"):
        fit(None, None, None, None, None, epochs=1, batch_size=1, patience=1, monitor="accuracy")


@pytest.mark.slow
def test_monitoring_val_accuracy_keeps_the_most_accurate_epoch():
    from models.training import Devices, scale_images
    from pipeline.cnn_training import build_model, fit_model, runtime

    split = make_split()
    cfg = make_config(epochs=4, patience=10, monitor="val_accuracy")
    with runtime(cfg, Devices("tensorflow")) as rt:
        model = build_model(cfg, "lenet5", split.image_shape, split.num_classes, steps_per_epoch=4, rt=rt)
        result = fit_model(cfg, "lenet5", model, scale_images(split.x["train"]), split.y["train"],
                           scale_images(split.x["val"]), split.y["val"], verbose=0)
        restored = float(np.mean(np.argmax(model.predict(scale_images(split.x["val"]), verbose=0), axis=1)
                                 == split.y["val"]))
    accuracies = [row["val_accuracy"] for row in result.history]
    assert len(accuracies) == 4
    assert result.best_epoch == accuracies.index(max(accuracies)) + 1  # the first epoch with the top accuracy
    assert restored == pytest.approx(result.best_val_accuracy, abs=1e-6)

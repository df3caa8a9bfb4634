"""DVC stage ``train_cnn@<arch>``: one CNN (LeNet-5 or AlexNet) on prepare's split.

Reads only ``data/prepared/split.npz`` -- the very images the classical side extracts its
features from -- scales them to float32 in [0, 1], trains the builder's model from
:mod:`models.cnn` with Adam and sparse categorical cross-entropy on the training split,
validates every epoch on the validation split (early stopping on ``val_loss`` with the
best weights restored; optional learning-rate schedule), and only then touches test.

Outputs (besides the shared ones of :mod:`pipeline.results`):

* ``artifacts/cnn/<arch>.keras``  the trained model, inference only (no optimizer state).
  It expects float32 images scaled to [0, 1] (``uint8 / 255``), shape ``(N, H, W, C)`` of
  the prepared split, and returns class probabilities.
* ``plots/history/<arch>.csv``     one row per epoch: loss, accuracy, val_loss,
  val_accuracy, learning_rate (at the start of the epoch), epoch_seconds.

MLflow (explicit logging, no autolog): the per-epoch values as step metrics named
``history.<column>`` (step = epoch, from 1) -- prefixed so that the run's plain
``val_accuracy`` stays the value written to ``metrics/cnn/<arch>.json`` --, the history CSV,
the shared metrics/plots, and the model with ``mlflow.keras.log_model``.

Devices: the GPUs the Keras backend sees are detected (TensorFlow, JAX or PyTorch) and
logged (tag ``device``, params ``gpu_count``/``gpu_names``). ``cnn.mixed_precision: auto``
trains in ``mixed_float16`` only when a GPU is present (``on`` forces it, ``off`` never);
the output layer is kept in float32 either way. With several GPUs, TensorFlow trains
under ``tf.distribute.MirroredStrategy`` and JAX under ``keras.distribution.DataParallel``;
``cnn.batch_size`` is then the global batch.

Reproducibility: ``keras.utils.set_random_seed(seed)`` seeds Python, NumPy and the backend,
so the initial weights, dropout masks and the per-epoch shuffling follow from ``seed``.
With ``cnn.deterministic: true`` and the TensorFlow backend,
``tf.config.experimental.enable_op_determinism()`` is also switched on, so the same seed,
data, software versions and hardware give the same weights, predictions and metrics
(checked on CPU by ``tests/test_train_cnn.py``); ops without a deterministic GPU kernel
then raise instead of silently varying. Not deterministic: anything timed (fit_seconds,
epoch_seconds, images/s), results across different CPUs/GPUs, thread counts or library
versions, float16 vs float32 runs, multi-GPU reduction order, and the JAX/PyTorch
backends, for which only the seeds are set (JAX on GPU would need
``XLA_FLAGS=--xla_gpu_deterministic_ops=true``, PyTorch
``torch.use_deterministic_algorithms(True)``). Op determinism is process-wide and cannot
be switched off again in TensorFlow.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from pipeline.config import ARCHITECTURES, MIXED_PRECISION, Config, for_arch
from pipeline.errors import ConfigError, DataError
from pipeline.io import Split, atomic_path, write_csv

ARTIFACT_DIR = Path("artifacts/cnn")
HISTORY_DIR = Path("plots/history")
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"]
MIXED = "mixed_float16"
PREDICT_REPEATS = 2  # throughput = the faster of two full passes over test, after a warm-up


def check_arch(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise ConfigError(f"--arch = {arch!r}: allowed: {', '.join(ARCHITECTURES)}")


def choose_precision(setting: str, gpu_count: int) -> str:
    """The Keras dtype policy for ``cnn.mixed_precision``: "mixed_float16" or "float32".

    ``auto`` uses float16 compute only on a GPU (on a CPU it is slower, not faster);
    ``on`` forces it, ``off`` never uses it.
    """
    if setting not in MIXED_PRECISION:
        raise ConfigError(f"cnn.mixed_precision = {setting!r}: allowed: {', '.join(MIXED_PRECISION)}")
    if setting == "on" or (setting == "auto" and gpu_count > 0):
        return MIXED
    return "float32"


# --- devices -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Devices:
    """The accelerators the Keras backend will use."""

    backend: str
    gpu_names: tuple[str, ...] = ()

    @property
    def gpu_count(self) -> int:
        return len(self.gpu_names)

    @property
    def label(self) -> str:
        """``cpu``, ``gpu:NVIDIA H100 80GB HBM3 x1`` or ``gpu:A x1+B x1``."""
        if not self.gpu_names:
            return "cpu"
        counts: dict[str, int] = {}
        for name in self.gpu_names:
            counts[name] = counts.get(name, 0) + 1
        return "gpu:" + "+".join(f"{name} x{n}" for name, n in counts.items())


def detect_devices(backend: str | None = None) -> Devices:
    """GPUs visible to the Keras backend (TensorFlow, JAX or PyTorch); none means CPU."""
    import keras

    backend = backend or keras.backend.backend()
    names: list[str] = []
    if backend == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                details = tf.config.experimental.get_device_details(gpu)
            except Exception:  # details are best effort; the device itself counts
                details = {}
            names.append(str(details.get("device_name") or gpu.name))
    elif backend == "jax":
        import jax

        names = [str(getattr(d, "device_kind", d)) for d in jax.devices() if d.platform == "gpu"]
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return Devices(backend, tuple(names))


# --- runtime: seed, determinism, precision, distribution -----------------------------------

@dataclass
class Runtime:
    devices: Devices
    precision: str
    strategy: Any = None  # tf.distribute strategy with several GPUs on TensorFlow

    @property
    def mixed_precision(self) -> bool:
        return self.precision == MIXED

    def scope(self) -> contextlib.AbstractContextManager:
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()


@contextlib.contextmanager
def runtime(cfg: Config, devices: Devices) -> Iterator[Runtime]:
    """Seed, determinism, dtype policy and multi-GPU distribution for one training.

    The global dtype policy and Keras distribution are restored on exit (models built
    inside keep theirs); TensorFlow's op determinism stays on for the process.
    """
    import keras

    keras.utils.set_random_seed(cfg.seed)
    if cfg.cnn.deterministic and devices.backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    precision = choose_precision(cfg.cnn.mixed_precision, devices.gpu_count)
    previous_policy = keras.mixed_precision.global_policy()
    previous_distribution = keras.distribution.distribution()
    strategy = None
    keras.mixed_precision.set_global_policy(precision)
    try:
        if devices.gpu_count > 1 and devices.backend == "tensorflow":
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
        elif devices.gpu_count > 1 and devices.backend == "jax":
            keras.distribution.set_distribution(keras.distribution.DataParallel())
        yield Runtime(devices, precision, strategy)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if devices.gpu_count > 1 and devices.backend == "jax":
            keras.distribution.set_distribution(previous_distribution)


# --- model ---------------------------------------------------------------------------------

def scale_images(x: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1] (the model's input)."""
    out = np.asarray(x).astype(np.float32)
    out /= np.float32(255.0)
    return out


def _float32_output(model: Any) -> Any:
    """The model with its output layer computing in float32 (a no-op under a float32 policy).

    Under ``mixed_float16`` the builders' final Dense+softmax would compute in float16;
    softmax and the loss need float32 for numerical stability. A final Dense layer is
    re-created with ``dtype="float32"`` (same name, same parameters); any other output
    layer gets a parameter-free float32 ``Activation("linear")`` appended.
    """
    import keras

    if keras.backend.standardize_dtype(model.output.dtype) == "float32":
        return model
    last = model.layers[-1]
    if isinstance(last, keras.layers.Dense):
        def clone(layer):
            config = layer.get_config()
            if layer is last:
                config["dtype"] = "float32"
            return layer.__class__.from_config(config)

        return keras.models.clone_model(model, clone_function=clone)
    outputs = keras.layers.Activation("linear", dtype="float32", name="output_float32")(model.output)
    return keras.Model(model.inputs, outputs, name=model.name)


def build_model(cfg: Config, arch: str, input_shape: tuple[int, ...], num_classes: int, *,
                steps_per_epoch: int, rt: Runtime) -> Any:
    """The compiled model of ``arch`` as params.yaml configures it (call inside :func:`runtime`)."""
    import keras

    from models import cnn

    check_arch(arch)
    cfg = for_arch(cfg, arch)  # idempotent: callers may pass the shared config
    builder = {"lenet5": cnn.lenet5, "alexnet": cnn.alexnet}[arch]
    with rt.scope():
        try:
            model = builder(input_shape=tuple(input_shape), num_classes=num_classes, **cfg.cnn.arch_params[arch])
        except ConfigError as exc:
            raise ConfigError(f"{cfg.source}: cnn.{arch}: {exc}") from None
        model = _float32_output(model)
        learning_rate: Any = cfg.cnn.learning_rate
        if cfg.cnn.lr_schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(
                cfg.cnn.learning_rate, decay_steps=max(1, cfg.cnn.epochs * steps_per_epoch))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def inference_model(model: Any) -> Any:
    """The same layers and weights as an uncompiled model (saves without optimizer state)."""
    import keras

    return keras.Model(model.inputs, model.outputs, name=model.name)


def save_model(model: Any, dest: Path) -> None:
    with atomic_path(dest, suffix=".keras") as tmp:
        inference_model(model).save(tmp)


# --- training ------------------------------------------------------------------------------

@dataclass
class FitResult:
    history: list[dict[str, float]]
    fit_seconds: float
    best_epoch: int  # 1-based epoch whose weights were restored
    epochs_run: int = field(init=False)

    def __post_init__(self) -> None:
        self.epochs_run = len(self.history)

    @property
    def best_val_accuracy(self) -> float:
        return float(self.history[self.best_epoch - 1]["val_accuracy"])

    @property
    def epoch_seconds(self) -> list[float]:
        return [row["epoch_seconds"] for row in self.history]


def _epoch_recorder(rows: list[dict], on_epoch: Callable[[dict], None] | None):
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        """One history row per epoch (learning rate at the epoch's start, wall seconds)."""

        def on_epoch_begin(self, epoch, logs=None):
            self._lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self._start
            logs = logs or {}
            row = {"epoch": epoch + 1}
            for key in HISTORY_COLUMNS[1:5]:
                value = logs.get(key)
                row[key] = round(float(value), 6) if value is not None else float("nan")
            row["learning_rate"] = float(str(np.float32(self._lr)))  # 0.001, not 0.0010000000474974513
            row["epoch_seconds"] = round(seconds, 4)
            rows.append(row)
            if on_epoch is not None:
                on_epoch(row)

    return EpochRecorder()


def fit_model(cfg: Config, model: Any, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
              y_val: np.ndarray, *, on_epoch: Callable[[dict], None] | None = None, verbose: int = 2) -> FitResult:
    """Train with early stopping on val_loss (best weights restored) and the configured schedule.

    ``x_*`` are the scaled float32 images (:func:`scale_images`); ``on_epoch`` receives each
    history row as soon as the epoch ends. Keras prints one line per epoch (``verbose=2``).
    """
    import keras

    rows: list[dict] = []
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.cnn.patience,
                                            restore_best_weights=True, verbose=1 if verbose else 0)
    callbacks = [_epoch_recorder(rows, on_epoch), stopper]
    if cfg.cnn.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(1, cfg.cnn.patience // 2), verbose=1 if verbose else 0))
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=cfg.cnn.batch_size, epochs=cfg.cnn.epochs,
              validation_data=(x_val, y_val), shuffle=True, callbacks=callbacks, verbose=verbose)
    fit_seconds = time.perf_counter() - start
    if not rows:
        raise DataError("training ran no epoch")
    return FitResult(rows, fit_seconds, best_epoch=int(stopper.best_epoch) + 1)


def _check_split(split: Split) -> None:
    for name in ("train", "val", "test"):
        x = split.x[name]
        if x.ndim != 4 or x.dtype != np.uint8:
            raise DataError(f"data/prepared/split.npz: x_{name} must be uint8 NHWC images; got "
                            f"{x.dtype} {x.shape}; rerun `cvd prepare`")
        if len(x) == 0:
            raise DataError(f"data/prepared/split.npz: the {name} split is empty; add images or change "
                            "data.val_fraction / data.test_fraction")


def _log_keras_model(model: Any, example: np.ndarray, probabilities: np.ndarray) -> None:
    """Log the inference model as an MLflow Keras model (pyfunc-loadable)."""
    import keras
    import mlflow
    from mlflow.models import infer_signature

    requirements = [f"keras=={keras.__version__}"]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        requirements.append(f"tensorflow=={tf.__version__}")
    # Explicit requirements: MLflow's inference of them reloads the model in a subprocess
    # (several seconds of TensorFlow start-up) and would find the same two packages.
    # No input_example: mlflow.keras.save_model writes it before creating the model folder
    # and fails with FileNotFoundError (mlflow/mlflow#16183, still in MLflow 3.17); the
    # signature (float32 tensor (-1, H, W, C) -> (-1, classes)) documents the input instead.
    mlflow.keras.log_model(inference_model(model), name="model",
                           signature=infer_signature(example, probabilities), pip_requirements=requirements)


def run(cfg: Config, arch: str) -> dict:
    import keras
    import mlflow

    from models.cnn import count_params
    from models.evaluate import time_predict
    from pipeline.io import load_split
    from pipeline.results import record_model
    from pipeline.tracking import log_metrics, stage_run

    check_arch(arch)
    cfg = for_arch(cfg, arch)
    split = load_split()
    _check_split(split)
    x = {name: scale_images(split.x[name]) for name in ("train", "val", "test")}
    devices = detect_devices()
    backend = keras.backend.backend()
    batch_size = cfg.cnn.batch_size

    with runtime(cfg, devices) as rt:
        # Built before the MLflow run opens, so a bad cnn.<arch> parameter leaves no failed run.
        model = build_model(cfg, arch, split.image_shape, split.num_classes,
                            steps_per_epoch=math.ceil(len(x["train"]) / batch_size), rt=rt)
        counts = count_params(model)
        tags = {"approach": "deep", "arch": arch, "model": arch, "device": devices.label, "backend": backend}
        params = {"arch": arch, "seed": cfg.seed, "epochs": cfg.cnn.epochs, "batch_size": batch_size,
                  "learning_rate": cfg.cnn.learning_rate, "patience": cfg.cnn.patience,
                  "lr_schedule": cfg.cnn.lr_schedule, "mixed_precision": cfg.cnn.mixed_precision,
                  "deterministic": cfg.cnn.deterministic, "precision_policy": rt.precision,
                  "gpu_count": devices.gpu_count, "gpu_names": ", ".join(devices.gpu_names) or "none",
                  **cfg.cnn.arch_params[arch]}
        with stage_run("train_cnn", experiment=cfg.experiment, run_name=f"deep-{arch}", dataset=split.dataset,
                       split_sha256=split.sha256, tags=tags, params=params):
            def log_epoch(row: dict) -> None:
                log_metrics({"history": {k: v for k, v in row.items() if k != "epoch"}}, step=row["epoch"])

            fit = fit_model(cfg, model, x["train"], split.y["train"], x["val"], split.y["val"], on_epoch=log_epoch)
            history_path = HISTORY_DIR / f"{arch}.csv"
            write_csv(history_path, fit.history, HISTORY_COLUMNS)
            mlflow.log_artifact(str(history_path), artifact_path="plots")

            dest = ARTIFACT_DIR / f"{arch}.keras"
            save_model(model, dest)

            def predict(images: np.ndarray) -> np.ndarray:
                return model.predict(images, batch_size=batch_size, verbose=0)

            predict(x["test"][:batch_size])  # warm-up: tracing is not throughput
            probabilities, images_per_s = time_predict(predict, x["test"], repeats=PREDICT_REPEATS)
            y_pred = np.argmax(probabilities, axis=1)
            epoch_seconds = float(np.mean(fit.epoch_seconds))
            result = record_model(
                approach="deep", model_id=arch, y_true=split.y["test"], y_pred=y_pred,
                class_names=split.class_names, param_count=counts["total"], model_path=dest,
                extra_scores={"trainable_params": int(counts["trainable"]), "epochs_run": fit.epochs_run,
                              "best_epoch": fit.best_epoch, "val_accuracy": round(fit.best_val_accuracy, 6)},
                run_info={"approach": "deep", "arch": arch, "dataset": split.dataset,
                          "split_sha256": split.sha256, "device": devices.label, "backend": backend,
                          "gpu_count": devices.gpu_count, "mixed_precision": rt.mixed_precision,
                          "fit_seconds": round(fit.fit_seconds, 4), "epoch_seconds": round(epoch_seconds, 4),
                          "predict_images_per_s": round(images_per_s, 1)},
            )
            _log_keras_model(model, x["test"][:2], probabilities[:2])
    print(f"{arch}: test accuracy {result['test_accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}, "
          f"{result['param_count']:,} params, {fit.epochs_run} epochs (best {fit.best_epoch}), "
          f"fit {fit.fit_seconds:.2f}s on {devices.label}")
    return result

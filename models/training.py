"""Training runtime of the CNNs: devices, precision, seeding, distribution, compile, fit.

Pure: every function takes its settings as arguments (the ``train_cnn`` stage passes
params.yaml's ``cnn`` values) and writes nothing. Keras and the backends are imported
inside the functions, so importing this module is cheap.

Devices: the GPUs the Keras backend sees are detected (TensorFlow, JAX or PyTorch,
:func:`detect_devices`). Precision ``auto`` trains in ``mixed_float16`` only when a GPU is
present (``on`` forces it, ``off`` never, :func:`choose_precision`); ``bfloat16`` trains in
``mixed_bfloat16``, which CPUs with bfloat16 instructions (AVX512-BF16, AMX) compute faster
than float32; the output layer is kept in float32 either way (:func:`float32_output`).
With several GPUs, TensorFlow trains under ``tf.distribute.MirroredStrategy`` and JAX
under ``keras.distribution.DataParallel`` (:func:`runtime`); the batch size is then the
global batch.

Reproducibility: ``keras.utils.set_random_seed(seed)`` seeds Python, NumPy and the backend,
so the initial weights, dropout masks and the per-epoch shuffling follow from ``seed``.
With ``deterministic=True`` and the TensorFlow backend,
``tf.config.experimental.enable_op_determinism()`` is also switched on, so the same seed,
data, software versions and hardware give the same weights, predictions and metrics
(checked on CPU by ``tests/test_train_cnn.py`` for LeNet-5; ResNet-20's weights were seen to
differ by up to ~2e-4 after one epoch between runs in one process on the 2-core CPU,
``benchmarks/bench_precision.py``); ops without a deterministic GPU kernel
then raise instead of silently varying. Not deterministic: anything timed (fit_seconds,
epoch_seconds, images/s), results across different CPUs/GPUs, thread counts or library
versions, float16 vs float32 runs, multi-GPU reduction order, and the JAX/PyTorch
backends, for which only the seeds are set (JAX on GPU would need
``XLA_FLAGS=--xla_gpu_deterministic_ops=true``, PyTorch
``torch.use_deterministic_algorithms(True)``). Op determinism is process-wide and cannot
be switched off again in TensorFlow.

Training (:func:`fit`): Adam and sparse categorical cross-entropy (:func:`compile_model`),
validation every epoch, early stopping on ``val_loss`` with the best weights restored,
and an optional learning-rate schedule (``plateau``: ReduceLROnPlateau, ``cosine``:
CosineDecay over all planned steps, ``constant``). Given the test images, the history also
records the test accuracy after each epoch, for the budget curve only: nothing is selected,
stopped or scheduled on it.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from models.errors import InputError, ParameterError
from models.inputs import scale_images  # noqa: F401 -- the input convention, used with fit

PRECISION_SETTINGS = ("auto", "on", "off", "bfloat16")
LR_SCHEDULES = ("plateau", "cosine", "constant")
MONITORS = ("val_loss", "val_accuracy")
MIXED = "mixed_float16"
MIXED_BF16 = "mixed_bfloat16"
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds",
                   "test_accuracy"]
LOGGED_COLUMNS = HISTORY_COLUMNS[1:5]  # the ones Keras' epoch logs hold


def choose_precision(setting: str, gpu_count: int) -> str:
    """The Keras dtype policy for a precision setting: "mixed_float16", "mixed_bfloat16" or "float32".

    ``auto`` uses float16 compute only on a GPU (on a CPU it is slower, not faster);
    ``on`` forces it, ``off`` never uses it. ``bfloat16`` computes in bfloat16 anywhere,
    with float32 weights: on a CPU with AVX512-BF16 ResNet-20 trains about 1.2x faster
    (1.05-1.38x over four runs of benchmarks/bench_precision.py on the project's 2-core
    machine), at a cost in accuracy to be measured on validation.

    Raises:
        ParameterError: a setting other than auto, on, off, bfloat16.
    """
    if setting not in PRECISION_SETTINGS:
        raise ParameterError(f"mixed_precision = {setting!r}: allowed: {', '.join(PRECISION_SETTINGS)}")
    if setting == "bfloat16":
        return MIXED_BF16
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
        return self.precision in (MIXED, MIXED_BF16)

    def scope(self) -> contextlib.AbstractContextManager:
        """Where models must be built and compiled (the distribution strategy's scope, if any)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()


@contextlib.contextmanager
def runtime(devices: Devices, *, seed: int, precision: str = "auto", deterministic: bool = True) -> Iterator[Runtime]:
    """Seed, determinism, dtype policy and multi-GPU distribution for one training.

    ``precision`` is a setting of :data:`PRECISION_SETTINGS` (see :func:`choose_precision`).
    The global dtype policy and Keras distribution are restored on exit (models built
    inside keep theirs); TensorFlow's op determinism stays on for the process.
    """
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic and devices.backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    policy = choose_precision(precision, devices.gpu_count)
    previous_policy = keras.mixed_precision.global_policy()
    previous_distribution = keras.distribution.distribution()
    strategy = None
    keras.mixed_precision.set_global_policy(policy)
    try:
        if devices.gpu_count > 1 and devices.backend == "tensorflow":
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
        elif devices.gpu_count > 1 and devices.backend == "jax":
            keras.distribution.set_distribution(keras.distribution.DataParallel())
        yield Runtime(devices, policy, strategy)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if devices.gpu_count > 1 and devices.backend == "jax":
            keras.distribution.set_distribution(previous_distribution)


# --- model ---------------------------------------------------------------------------------

def float32_output(model: Any) -> Any:
    """The model with its output layer computing in float32 (a no-op under a float32 policy).

    Under ``mixed_float16`` the final Dense+softmax would compute in float16; softmax and
    the loss need float32 for numerical stability. A final Dense layer is re-created with
    ``dtype="float32"`` (same name, same parameters); any other output layer gets a
    parameter-free float32 ``Activation("linear")`` appended.
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


def check_lr_schedule(lr_schedule: str) -> None:
    """ParameterError unless ``lr_schedule`` is one of :data:`LR_SCHEDULES`."""
    if lr_schedule not in LR_SCHEDULES:
        raise ParameterError(f"lr_schedule = {lr_schedule!r}: allowed: {', '.join(LR_SCHEDULES)}")


def compile_model(model: Any, *, learning_rate: float, lr_schedule: str = "plateau", epochs: int = 1,
                  steps_per_epoch: int = 1) -> Any:
    """``model`` with a float32 output, compiled with Adam and sparse categorical cross-entropy.

    ``lr_schedule="cosine"`` decays the learning rate over ``epochs * steps_per_epoch``
    steps; ``plateau`` and ``constant`` start from ``learning_rate`` (plateau's reduction is
    a callback of :func:`fit`). Call it inside :meth:`Runtime.scope`.

    Raises:
        ParameterError: an unknown schedule.
    """
    import keras

    check_lr_schedule(lr_schedule)
    model = float32_output(model)
    rate: Any = learning_rate
    if lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, epochs * steps_per_epoch))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def inference_model(model: Any) -> Any:
    """The same layers and weights as an uncompiled model (saves without optimizer state)."""
    import keras

    return keras.Model(model.inputs, model.outputs, name=model.name)


# --- training ------------------------------------------------------------------------------

def build_training_state(model: Any, x: Any, y: Any) -> None:
    """Create the optimizer's and the metrics' variables of a compiled ``model`` now, from the
    shapes of the images ``x`` and labels ``y``.

    Keras on TensorFlow without a distribution strategy defers them to the first trace of the
    train step, and a ``tf.function`` that creates variables is traced twice: for ResNet-20
    the second trace cost ~3.5 s of every fit on 2 cores (LeNet-5 ~0.5 s). Keras itself does
    this under a strategy and on JAX; the variables start at zero either way, so the weights
    trained afterwards are the same: bit-identical for LeNet-5 (tests/test_train_cnn.py; the
    default run's scores did not change), while ResNet-20's differ in the last bits (up to ~1e-4
    after one epoch), as two runs of ResNet-20 on the CPU can anyway (benchmarks/bench_precision.py).
    """
    import keras

    if keras.backend.backend() != "tensorflow" or getattr(model, "_distribute_strategy", None) is not None:
        return
    model._symbolic_build(data_batch=(x[:1], y[:1]))


@dataclass
class FitResult:
    history: list[dict[str, float]]  # one row per epoch, keys HISTORY_COLUMNS
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


def epoch_recorder(rows: list[dict], on_epoch: Callable[[dict], None] | None = None,
                   test: tuple[Any, Any] | None = None, batch_size: int = 32) -> Any:
    """A Keras callback appending one :data:`HISTORY_COLUMNS` row per epoch to ``rows``.

    ``test`` = (scaled images, labels): the row's ``test_accuracy`` is the share of them the
    model gets right at the epoch's end (NaN without ``test``). It is measured after the
    epoch's seconds and kept out of Keras' logs, so early stopping, the restored epoch and
    the schedule never see it: it is for the budget curve only, never for selection. The
    callback's ``test_seconds`` adds up the time those passes took (not training time).
    """
    import keras
    import numpy as np

    class EpochRecorder(keras.callbacks.Callback):
        """One history row per epoch (learning rate at the epoch's start, wall seconds)."""

        test_seconds = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self._start
            logs = logs or {}
            row = {"epoch": epoch + 1}
            for key in LOGGED_COLUMNS:
                value = logs.get(key)
                row[key] = round(float(value), 6) if value is not None else float("nan")
            row["learning_rate"] = float(str(np.float32(self._lr)))  # 0.001, not 0.0010000000474974513
            row["epoch_seconds"] = round(seconds, 4)
            row["test_accuracy"] = self._test_accuracy() if test is not None else float("nan")
            rows.append(row)
            if on_epoch is not None:
                on_epoch(row)

        def _test_accuracy(self) -> float:
            start = time.perf_counter()
            x, y = test
            # batch by batch: the same outputs as model.predict, without its ~50 ms of set-up per call
            predicted = np.concatenate([np.argmax(self.model.predict_on_batch(x[i:i + batch_size]), axis=1)
                                        for i in range(0, len(x), batch_size)])
            self.test_seconds += time.perf_counter() - start
            return round(float(np.mean(predicted == np.asarray(y))), 6)

    return EpochRecorder()


def augmented_batches(x: Any, y: Any, *, batch_size: int, seed: int, horizontal_flip: bool = False,
                      max_shift: int = 0) -> Any:
    """A ``keras.utils.PyDataset`` of training batches, reshuffled and augmented every epoch.

    Epoch ``e`` visits the images in the order ``default_rng([seed, e]).permutation(n)`` and
    augments batch ``i`` with ``batch_rng(seed, e, i)`` (:mod:`models.augment`), so the batches
    depend only on the seed, never on Keras' or the backend's random state.
    """
    import keras
    import numpy as np

    from models.augment import augment, batch_rng, check_augmentation

    check_augmentation(horizontal_flip, max_shift)
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y) or len(x) == 0:
        raise InputError(f"augmented_batches needs as many labels as images (> 0); got {len(x)} and {len(y)}")

    class AugmentedBatches(keras.utils.PyDataset):
        def __init__(self):
            # two threads prepare the next batches while the backend trains on this one (Keras keeps
            # their order): ResNet-20 epochs 1.5x faster on 2 cores, LeNet-5's unchanged, the same
            # weights either way (benchmarks/bench_augment.py)
            super().__init__(workers=2, use_multiprocessing=False)
            self.epoch = 0
            self._order = np.random.default_rng([seed, 0]).permutation(len(x))

        def __len__(self):
            return -(-len(x) // batch_size)

        def __getitem__(self, index):
            rows = self._order[index * batch_size:(index + 1) * batch_size]
            images = augment(x[rows], batch_rng(seed, self.epoch, index),
                             horizontal_flip=horizontal_flip, max_shift=max_shift)
            return images, y[rows]

        def on_epoch_end(self):
            self.epoch += 1
            self._order = np.random.default_rng([seed, self.epoch]).permutation(len(x))

    return AugmentedBatches()


def fit(model: Any, x_train: Any, y_train: Any, x_val: Any, y_val: Any, *, epochs: int, batch_size: int,
        patience: int, lr_schedule: str = "plateau", on_epoch: Callable[[dict], None] | None = None,
        verbose: int = 2, augmentation: dict | None = None, seed: int = 0, monitor: str = "val_loss",
        test: tuple[Any, Any] | None = None) -> FitResult:
    """Train with early stopping on val_loss (best weights restored) and the schedule's callback.

    ``x_*`` are the scaled float32 images (:func:`scale_images`); ``on_epoch`` receives each
    history row as soon as the epoch ends. Keras prints one line per epoch (``verbose=2``).
    With ``lr_schedule="plateau"`` the rate halves after ``max(1, patience // 2)`` epochs
    without a lower val_loss. ``augmentation`` (``horizontal_flip``, ``max_shift``, see
    :mod:`models.augment`) with either switched on trains on :func:`augmented_batches` drawn
    from ``seed``; otherwise Keras shuffles the arrays themselves. ``monitor`` (one of
    :data:`MONITORS`) is what early stopping, the restored epoch and the plateau schedule
    follow: the lowest validation loss, or the highest validation accuracy -- they part ways
    once a model grows over-confident on the images it gets wrong.

    ``test`` = (scaled test images, labels) adds each epoch's test accuracy to the history
    (:func:`epoch_recorder`) for the budget curve: a prediction pass per epoch that changes
    neither the weights nor any random draw, is never monitored, and whose time is left out
    of ``fit_seconds``.

    Raises:
        InputError: no epoch ran.
    """
    import keras

    if monitor not in MONITORS:
        raise ParameterError(f"monitor = {monitor!r}: allowed: {', '.join(MONITORS)}")
    rows: list[dict] = []
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                            restore_best_weights=True, verbose=1 if verbose else 0)
    recorder = epoch_recorder(rows, on_epoch, test, batch_size)
    callbacks = [recorder, stopper]
    if lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.5, patience=max(1, patience // 2), verbose=1 if verbose else 0))
    augmentation = augmentation or {}
    build_training_state(model, x_train, y_train)
    start = time.perf_counter()
    if augmentation.get("horizontal_flip") or augmentation.get("max_shift"):
        batches = augmented_batches(x_train, y_train, batch_size=batch_size, seed=seed, **augmentation)
        # shuffle=False: the batches already visit a new seeded permutation every epoch (Keras would
        # reorder whole batches with Python's global random state on top)
        model.fit(batches, epochs=epochs, validation_data=(x_val, y_val), callbacks=callbacks, verbose=verbose,
                  shuffle=False)
    else:
        model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val),
                  shuffle=True, callbacks=callbacks, verbose=verbose)
    fit_seconds = time.perf_counter() - start - recorder.test_seconds
    if not rows:
        raise InputError("training ran no epoch")
    return FitResult(rows, fit_seconds, best_epoch=int(stopper.best_epoch) + 1)

"""params.yaml's ``cnn`` section turned into :mod:`models.training` calls: the runtime, the
compiled network of one architecture, its fit, and the extra seeds of ``evaluation.repeats``
(used by ``train_cnn`` and the CNN benchmarks)."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from models import architectures, training
from pipeline.config import Config, component_section
from pipeline.errors import ConfigError
from pipeline.io import Split


def runtime(cfg: Config, devices: training.Devices):
    """:func:`models.training.runtime` with params.yaml's seed and cnn settings."""
    return training.runtime(devices, seed=cfg.seed, precision=cfg.cnn.mixed_precision,
                            deterministic=cfg.cnn.deterministic)


def build_model(cfg: Config, arch: str, input_shape: tuple[int, ...], num_classes: int, *,
                steps_per_epoch: int, rt: training.Runtime) -> Any:
    """The compiled model of ``arch`` as ``cfg`` configures it (``cnn.<arch>``); inside ``rt``."""
    settings = cfg.cnn.training(arch)
    with rt.scope():
        with component_section(cfg, f"cnn.{arch}"):
            model = architectures.get(arch).build(tuple(input_shape), num_classes, **cfg.cnn.section(arch).arguments())
        return training.compile_model(model, learning_rate=settings.learning_rate, lr_schedule=cfg.cnn.lr_schedule,
                                      epochs=settings.epochs, steps_per_epoch=steps_per_epoch)


def check_settings(cfg: Config, arch: str) -> None:
    """params.yaml ``cnn.<arch>`` and the training vocabulary, checked before any data is read."""
    architecture = architectures.get(arch)
    arguments = cfg.cnn.section(arch).arguments()
    unknown = sorted(set(arguments) - set(architecture.parameters()))
    if unknown:
        allowed = (*architecture.parameters(), "train")
        raise ConfigError(f"{cfg.source}: unknown key 'cnn.{arch}.{unknown[0]}'; allowed: {', '.join(allowed)}")
    with component_section(cfg, f"cnn.{arch}"):
        architecture.layers(**arguments)
    with component_section(cfg, "cnn"):
        training.choose_precision(cfg.cnn.mixed_precision, gpu_count=0)
        training.check_lr_schedule(cfg.cnn.lr_schedule)


def fit_model(cfg: Config, arch: str, model: Any, x_train, y_train, x_val, y_val, **kwargs: Any) -> training.FitResult:
    """:func:`models.training.fit` with params.yaml's cnn settings for ``arch``."""
    settings = cfg.cnn.training(arch)
    return training.fit(model, x_train, y_train, x_val, y_val, epochs=settings.epochs, batch_size=settings.batch_size,
                        patience=cfg.cnn.patience, lr_schedule=cfg.cnn.lr_schedule, monitor=cfg.cnn.monitor,
                        augmentation=cfg.cnn.augment.model_dump(), seed=kwargs.pop("seed", cfg.seed), **kwargs)


def train_extra_seeds(cfg: Config, arch: str, x: dict, split: Split, rt: training.Runtime,
                      log_seed: Callable[[dict], Any] | None = None) -> list[dict]:
    """Rebuild and train ``arch`` with each extra seed of ``evaluation.repeats`` (Keras' global
    seed set to it, inside the runtime ``rt`` of the first seed, so op determinism stays on) and
    score it; ``log_seed`` gets each one's scores (the stage logs them as an MLflow run nested under
    its own). Their scores, in seed order."""
    import keras

    from comparison.repeats import seed_scores, seeds

    scores = []
    batch_size = cfg.cnn.training(arch).batch_size
    for seed in seeds(cfg.seed, cfg.evaluation.repeats)[1:]:
        keras.utils.set_random_seed(seed)
        model = build_model(cfg, arch, split.image_shape, split.num_classes,
                            steps_per_epoch=math.ceil(len(x["train"]) / batch_size), rt=rt)
        fit = fit_model(cfg, arch, model, x["train"], split.y["train"], x["val"], split.y["val"], seed=seed)
        y_pred = np.argmax(model.predict(x["test"], batch_size=batch_size, verbose=0), axis=1)
        scores.append(seed_scores(seed, split.y["test"], y_pred, fit.best_val_accuracy, split.num_classes))
        if log_seed is not None:
            log_seed(scores[-1])
        print(f"{arch} seed {seed}: test accuracy {scores[-1]['test_accuracy']:.4f}, {fit.epochs_run} epochs")
    return scores

"""The ``cvd`` command line: one command per DVC stage (stage name = command = module).

Heavy libraries (TensorFlow, MLflow, scikit-learn) are imported inside the commands, so
``cvd --help`` answers instantly. A user mistake (:class:`CvdError`) prints one line and
exits with code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import functools
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable

import click

from pipeline.errors import CvdError


def _version() -> str:
    try:
        return version("classic-vs-deep")
    except PackageNotFoundError:
        return "0+unknown"


def user_errors(func: Callable) -> Callable:
    """Turn project errors into ``error: <message>`` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CvdError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def _load(params: str, overrides: dict[str, Any] | None = None, *, features: bool = False,
          classifiers: bool = False):
    """Load params.yaml; check the component parameters the calling stage uses."""
    from pipeline.config import load_config, validate_components

    cfg = load_config(params, {k: v for k, v in (overrides or {}).items() if v is not None})
    if features or classifiers:
        validate_components(cfg, features=features, classifiers=classifiers)
    return cfg


params_option = click.option("--params", "params", default="params.yaml", show_default=True,
                             type=click.Path(dir_okay=False), help="The params file to read.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="cvd")
def cli() -> None:
    """classic-vs-deep: handcrafted features + classical classifiers vs CNNs on the same split.

    Each command is one DVC stage; `dvc repro` runs them all in order.
    """


@cli.command()
@params_option
@click.option("--dataset", help="Override data.dataset (digits|mnist|fashion_mnist|cifar10|folder).")
@click.option("--path", "data_path", help="Override data.path (directory of the dataset).")
@click.option("--image-size", type=int, help="Override data.image_size.")
@click.option("--channels", type=int, help="Override data.channels (1 or 3).")
@click.option("--limit-per-class", type=int, help="Override data.limit_per_class.")
@click.option("--seed", type=int, help="Override seed.")
@user_errors
def prepare(params: str, dataset: str | None, data_path: str | None, image_size: int | None,
            channels: int | None, limit_per_class: int | None, seed: int | None) -> None:
    """Load the dataset and write the stratified split every model reads."""
    from pipeline import prepare as stage

    cfg = _load(params, {"data.dataset": dataset, "data.path": data_path, "data.image_size": image_size,
                         "data.channels": channels, "data.limit_per_class": limit_per_class, "seed": seed})
    manifest = stage.run(cfg)
    counts = manifest["counts"]
    click.echo(f"prepared {manifest['dataset']}: {counts['train']} train / {counts['val']} val / "
               f"{counts['test']} test, {manifest['num_classes']} classes, images "
               f"{'x'.join(map(str, manifest['image_shape']))}, sha256 {manifest['sha256'][:12]}")


@cli.command()
@params_option
@click.option("--name", required=True, help="Feature set to extract (raw|sobel|hog|sift).")
@user_errors
def features(params: str, name: str) -> None:
    """Fit one extractor on the training images and transform every split."""
    from pipeline import features as stage

    cfg = _load(params, features=True)
    stage.run(cfg, name)


@cli.command("train-classical")
@params_option
@click.option("--feature", required=True, help="Feature set (raw|sobel|hog|sift).")
@click.option("--classifier", required=True, help="Classifier (linear_svm|rbf_svm|logreg|random_forest|knn).")
@user_errors
def train_classical(params: str, feature: str, classifier: str) -> None:
    """Train one scikit-learn classifier on one feature set and evaluate it on test."""
    from pipeline import train_classical as stage

    cfg = _load(params, classifiers=True)
    stage.run(cfg, feature, classifier)


@cli.command("train-cnn")
@params_option
@click.option("--arch", required=True, help="Architecture (lenet5|alexnet).")
@click.option("--epochs", type=int, help="Override cnn.epochs for this run.")
@user_errors
def train_cnn(params: str, arch: str, epochs: int | None) -> None:
    """Train one CNN on the prepared split and evaluate it on test."""
    from pipeline import train_cnn as stage
    from pipeline.config import ARCHITECTURES

    # --epochs wins over both the shared cnn.epochs and an architecture's own cnn.<arch>.epochs
    # (an unknown --arch is left to the stage, which names the allowed ones)
    cfg = _load(params, {"cnn.epochs": epochs, f"cnn.{arch}.epochs": epochs if arch in ARCHITECTURES else None})
    stage.run(cfg, arch)


@cli.command()
@params_option
@click.option("--from-mlflow", is_flag=True, help="Rebuild the leaderboard from MLflow runs instead of metrics/.")
@click.option("--experiment", help="MLflow experiment to read with --from-mlflow (default: params' experiment).")
@user_errors
def compare(params: str, from_mlflow: bool, experiment: str | None) -> None:
    """Build the leaderboard and plots of every configured model, classical and deep."""
    from pipeline import compare as stage

    cfg = _load(params)
    stage.run(cfg, from_mlflow=from_mlflow, experiment=experiment)


@cli.command()
@click.argument("arch", type=click.Choice(["lenet5", "alexnet"]))
@click.option("--input-shape", help="Data shape H,W,C (default: the architecture's own input).")
@click.option("--num-classes", type=int, help="Number of classes (default: 10 for LeNet-5, 1000 for AlexNet).")
@click.option("--variant", type=click.Choice(["lecture", "original"]), help="AlexNet variant.")
@click.option("--image-size", type=int, help="AlexNet internal image size.")
@user_errors
def describe(arch: str, input_shape: str | None, num_classes: int | None, variant: str | None,
             image_size: int | None) -> None:
    """Print the layer table: output sizes by the lecture's formula, weights, biases, totals."""
    from pipeline.errors import ConfigError

    shape = None
    if input_shape:
        try:
            shape = tuple(int(v) for v in input_shape.replace("x", ",").split(","))
        except ValueError:
            raise ConfigError(f"--input-shape = {input_shape!r}: expected H,W,C such as 32,32,1") from None
        if len(shape) != 3 or min(shape) < 1:
            raise ConfigError(f"--input-shape = {input_shape!r}: expected three positive numbers H,W,C")
    kwargs = {k: v for k, v in {"variant": variant, "image_size": image_size}.items() if v is not None}
    if arch == "lenet5" and kwargs:
        raise ConfigError(f"--variant/--image-size apply to alexnet only, not {arch}")
    from models.describe import describe as render

    click.echo(render(arch, input_shape=shape, num_classes=num_classes, **kwargs))


def main() -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    cli(prog_name="cvd")


if __name__ == "__main__":
    main()

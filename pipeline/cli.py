"""The ``cvd`` command line: one command per DVC stage (stage name = command = module).

Heavy libraries (TensorFlow, MLflow, scikit-learn, OpenCV) are imported inside the
commands, so ``cvd --help`` answers instantly. The help of ``--name``, ``--feature``,
``--classifier`` and ``--arch`` lists the component registries' names (listed without importing
a component); the value is checked once, by the registry's own check, which the stage calls. A user mistake (:class:`CvdError`, or a ``FeatureError`` /
``ModelError`` from the components) prints one line and exits with code 2; anything else
is a bug and keeps its traceback.
"""
from __future__ import annotations

import click

from features import extractor_names
from models import architectures, classifiers
from pipeline.cli_support import (component_rows, load, package_version, params_option, parse_input_shape,
                                  prepare_process, user_errors)

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_version(), "--version", prog_name="cvd")
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

    cfg = load(params, {"data.dataset": dataset, "data.path": data_path, "data.image_size": image_size,
                         "data.channels": channels, "data.limit_per_class": limit_per_class, "seed": seed})
    manifest = stage.run(cfg)
    counts = manifest["counts"]
    click.echo(f"prepared {manifest['dataset']}: {counts['train']} train / {counts['val']} val / "
               f"{counts['test']} test, {manifest['num_classes']} classes, images "
               f"{'x'.join(map(str, manifest['image_shape']))}, sha256 {manifest['sha256'][:12]}")


@cli.command()
@params_option
@click.option("--name", required=True, help=f"Feature set to extract: {', '.join(extractor_names())}.")
@user_errors
def features(params: str, name: str) -> None:
    """Fit one extractor on the training images and transform every split."""
    from pipeline import features as stage

    stage.run(load(params), name)


@cli.command("train-classical")
@params_option
@click.option("--feature", required=True, help=f"Feature set: {', '.join(extractor_names())}.")
@click.option("--classifier", required=True, help=f"Classifier: {', '.join(classifiers.names())}.")
@user_errors
def train_classical(params: str, feature: str, classifier: str) -> None:
    """Train one scikit-learn classifier on one feature set and evaluate it on test."""
    from pipeline import train_classical as stage

    stage.run(load(params), feature, classifier)


@cli.command("train-cnn")
@params_option
@click.option("--arch", required=True, help=f"Architecture: {', '.join(architectures.names())}.")
@click.option("--epochs", type=int, help="Override cnn.epochs and cnn.<arch>.train.epochs for this run.")
@user_errors
def train_cnn(params: str, arch: str, epochs: int | None) -> None:
    """Train one CNN on the prepared split and evaluate it on test."""
    from pipeline import train_cnn as stage

    architectures.check_name(arch)  # before it names an override key
    # --epochs wins over both the shared cnn.epochs and the architecture's own cnn.<arch>.train.epochs
    cfg = load(params, {"cnn.epochs": epochs, f"cnn.{arch}.train.epochs": epochs})
    stage.run(cfg, arch)


@cli.command()
@params_option
@click.option("--from-mlflow", is_flag=True, help="Rebuild the leaderboard from MLflow runs instead of metrics/.")
@click.option("--experiment", help="MLflow experiment to read with --from-mlflow (default: params' experiment).")
@click.option("--pair", nargs=2, metavar="A B", help="Compare two configured models on the same test images "
              "(paired interval, McNemar's test); prints the result, writes nothing.")
@user_errors
def compare(params: str, from_mlflow: bool, experiment: str | None, pair: tuple[str, str] | None) -> None:
    """Build the leaderboard and plots of every configured model, classical and deep.

    The best model of each approach is chosen on validation accuracy; the verdict compares
    the two on the same test images.
    """
    from pipeline import compare as stage
    from pipeline.errors import ConfigError

    cfg = load(params)
    if pair:
        if from_mlflow or experiment:
            raise ConfigError("--pair: compares the models' prediction files; not with --from-mlflow/--experiment")
        from pipeline import pair as tool

        tool.run(cfg, *pair)
        return
    stage.run(cfg, from_mlflow=from_mlflow, experiment=experiment)


@cli.command()
@params_option
@user_errors
def explain(params: str) -> None:
    """Where the best classical and best deep model differ: per-class deltas, disagreement
    galleries, confident mistakes, confusion difference, and reports/index.html."""
    from pipeline import explain as stage

    stage.run(load(params))


@cli.command("learning-curve")
@params_option
@click.option("--fraction", required=True, help="Fraction of the training split: one of curve.fractions.")
@user_errors
def learning_curve(params: str, fraction: str) -> None:
    """One learning-curve point: the best classical and deep models retrained on a nested subset."""
    from pipeline import learning_curve as stage

    stage.run(load(params), fraction)


@cli.command()
@params_option
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--from-split", "from_split", type=click.Choice(["train", "val", "test"]),
              help="Draw images of this part of data/prepared/split.npz instead of image files.")
@click.option("--n", "n", type=int, default=8, show_default=True, help="How many images with --from-split.")
@click.option("--out", default="reports/visualize", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the PNGs (one sub-folder per image).")
@click.option("--arch", "archs", multiple=True, help=f"CNN(s) to draw ({', '.join(architectures.names())}; "
              "error if not trained); default: every trained one.")
@user_errors
def visualize(params: str, images: tuple[str, ...], from_split: str | None, n: int, out: str,
              archs: tuple[str, ...]) -> None:
    """Draw both approaches on images: Sobel, HOG, SIFT, visual words, CNN filters and maps.

    Also draws the lecture's worked convolution, padding, stride and pooling examples.
    """
    from pipeline import visualize as stage

    for arch in archs:
        architectures.check_name(arch)
    cfg = load(params)
    stage.run(cfg, images, from_split, n, out, archs or None)


@cli.command()
@params_option
@click.argument("model")
@click.argument("images", nargs=-1, type=click.Path())
@click.option("--out", default="predictions.csv", show_default=True, type=click.Path(dir_okay=False),
              help="CSV to write: path, class, score, score_kind, top3.")
@user_errors
def predict(params: str, model: str, images: tuple[str, ...], out: str) -> None:
    """Classify image files or folders with MODEL: a model id (hog-logreg, lenet5), `best`
    (the champion of the last compare) or an MLflow URI (models:/classic-vs-deep-digits@champion).

    Images are read as `prepare` reads them (same channels, resized to the split's size).
    """
    from pipeline import predict as stage

    rows = stage.run(load(params), model, images, out)
    click.echo(stage.table(rows))
    click.echo(f"wrote {len(rows)} predictions to {out}")


@cli.command("code-digests")
@user_errors
def code_digests() -> None:
    """Write code_digests/: the SHA-256 of each project file every stage runs (its code dependency)."""
    from pipeline import code_digests as stage
    click.echo(f"wrote {len(stage.run())} files in code_digests/")


@cli.command("log")
@params_option
@user_errors
def log_runs(params: str) -> None:
    """Log to MLflow the runs a stage could not log (the tracking server was down), from its files."""
    from pipeline import log as tool

    tool.run(load(params))


@cli.command()
@params_option
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: a free one).")
@click.option("--experiment", help="MLflow experiment to open (default: params.yaml mlflow.experiment).")
@user_errors
def ui(params: str, port: int | None, experiment: str | None) -> None:
    """Start the MLflow UI on the project's tracking store and print the link to the model comparison."""
    from pipeline import ui as stage

    stage.run(experiment or load(params).experiment, port, echo=lambda line: click.echo(line))


@cli.command()
@click.argument("arch")
@click.option("--input-shape", help="Data shape H,W,C (default: the architecture's own input).")
@click.option("--num-classes", type=int, help="Number of classes (default: the architecture's own).")
@click.option("--variant", help="The architecture's variant parameter (AlexNet: lecture or original).")
@click.option("--image-size", type=int, help="The architecture's internal image size (AlexNet).")
@user_errors
def describe(arch: str, input_shape: str | None, num_classes: int | None, variant: str | None,
             image_size: int | None) -> None:
    """Print the layer table of ARCH (an architecture: see `cvd components`): output sizes by the
    lecture's formula, weights, biases, totals."""
    shape = parse_input_shape(input_shape) if input_shape else None
    # the architecture rejects a parameter it does not take, naming the ones it does
    params = {k: v for k, v in {"variant": variant, "image_size": image_size}.items() if v is not None}
    from models.describe import describe as render

    click.echo(render(arch, input_shape=shape, num_classes=num_classes, **params))


@cli.command()
@click.option("--markdown", is_flag=True, help="A markdown table (the README's) instead of plain text.")
def components(markdown: bool) -> None:
    """List the registered extractors, classifiers and CNN architectures (see README "Extending")."""
    import pandas as pd

    table = pd.DataFrame(component_rows())
    click.echo(table.to_markdown(index=False, tablefmt="pipe" if markdown else "simple"))


def main() -> None:
    prepare_process()
    cli(prog_name="cvd")


if __name__ == "__main__":
    main()

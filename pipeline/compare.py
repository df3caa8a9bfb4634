"""DVC stage ``compare``: the leaderboard of every configured model, classical and deep.

Reads the per-model files of :mod:`pipeline.results` for exactly the models that
params.yaml configures (``Config.model_ids()``; files of removed models are ignored),
refuses models trained on different splits, and writes

* ``reports/leaderboard.csv`` / ``reports/leaderboard.md``  ranked by test accuracy
* ``reports/summary.json``     DVC metrics: best of each approach (chosen on validation
                                accuracy), their paired comparison on test (the verdict);
                                with ``evaluation.repeats`` > 1 also their mean ± sd test
                                accuracy over the seeds (context; the per-image test decides)
* ``reports/plots/*.png``      accuracy vs parameters and accuracy bars (with intervals),
                                confusion matrices of the best models, CNN training curves,
                                McNemar p-values between the top models

The stage only wires the parts together: read (:mod:`pipeline.results`) -> compute
(:mod:`comparison.statistics`, :mod:`comparison.leaderboard`, :mod:`comparison.verdict`) -> render
in memory (:mod:`comparison.plots`, :mod:`comparison.confusion`) -> write every file atomically,
only when all of it succeeded -> log (:mod:`pipeline.model_runs`). Each classical model's MLflow run is logged here, from its files
(:mod:`pipeline.model_runs`: the ``train_classical`` stages import no MLflow or matplotlib, which
cost more than most of their fits; a model whose files did not change since they were logged
keeps its run). The CNN stages log their own runs (live epoch metrics; TensorFlow's import
dwarfs MLflow's), their ids are in the ``.run.json`` files. An MLflow run ``comparison`` gets the
files as artifacts, the summary and the verdict's numbers as metrics, and becomes the parent of
the model runs (:func:`pipeline.model_runs.log_comparison`). Last, the validation-selected best model of each approach and the champion are
registered in the MLflow Model Registry (:mod:`pipeline.registry`).

``cvd compare --pair A B`` compares two configured models on the same test images and
prints the verdict-style line for them, writing nothing.

``cvd compare --from-mlflow`` rebuilds the leaderboard from the MLflow runs instead
(latest FINISHED run per configured model, on the current split) and writes
``reports/leaderboard_mlflow.csv`` / ``.md``, leaving DVC's outputs alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from comparison import confusion, leaderboard, plots, statistics
from comparison.verdict import pair_line, verdict_fields, verdict_line
from pipeline import layout, model_runs, read_results
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.io import atomic_path

PLOT_NAMES = ("accuracy_vs_params", "accuracy_bars", "confusion_best", "training_curves", "pairwise_pvalues")
PAIRWISE_MODELS = 8  # the p-value heat map shows the top models by test accuracy


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _manifest() -> dict:
    """The prepared split's manifest, or ``{}`` when there is none here (e.g. a fresh clone)."""
    try:
        manifest = json.loads(layout.MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _figures(cfg: Config, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
             images: statistics.TestImages, class_names: Sequence[str]) -> dict:
    """The plots by name; reads the confusion rows and histories they need."""
    subtitle = leaderboard.subtitle(summary)
    best = [b["model"] for b in (summary["best_classical"], summary["best_deep"]) if b]
    chosen = confusion.confusion_models(rows, best=best)
    confusions = {r["model"]: read_results.read_confusion(r["approach"], r["model"]) for r in chosen}
    classes = confusion.class_order({c for pair in confusions.values() for names in pair for c in names}, class_names)
    panels = [(r, confusion.confusion_counts(*confusions[r["model"]], classes)) for r in chosen]
    histories = {arch: read_results.read_history(arch) for arch in cfg.model_ids()["deep"]}
    top = list(rows[:PAIRWISE_MODELS])
    return {
        "accuracy_vs_params": plots.plot_accuracy_vs_params(rows, subtitle),
        "accuracy_bars": plots.plot_accuracy_bars(rows, subtitle),
        "confusion_best": confusion.plot_confusion_best(panels, classes, subtitle),
        "training_curves": plots.plot_training_curves(histories, subtitle),
        "pairwise_pvalues": plots.plot_pairwise_pvalues(
            top, statistics.pairwise_pvalues([r["model"] for r in top], images), subtitle, cfg.evaluation.alpha),
    }


def _write(outputs: Mapping[Path, bytes]) -> None:
    for dest, content in outputs.items():
        with atomic_path(dest) as tmp:
            tmp.write_bytes(content)


def _evaluate(cfg: Config, rows: Sequence[Mapping[str, Any]]):
    """Ranked rows with their statistics, the summary with the verdict, its line, the test images."""
    settings = statistics.Settings.from_config(cfg)
    rows = leaderboard.rank_rows(rows)
    images = read_results.read_test_images(rows)
    rows = statistics.with_statistics(rows, images, settings)
    best = leaderboard.select_best(rows)
    comparison = None
    if best["classical"] and best["deep"]:  # a = deep, b = classical: difference = deep - classical
        comparison = settings.compare(images.correct(best["deep"]["model"]), images.correct(best["classical"]["model"]))
    summary = leaderboard.build_summary(rows, verdict_fields(comparison))
    return rows, summary, verdict_line(summary, settings.level), images, settings.level


def _tables(rows: Sequence[Mapping[str, Any]], title: str, line: str, level: str, stem: str) -> dict[Path, bytes]:
    """The leaderboard's CSV and markdown files (``reports/<stem>.csv|md``), printed as a table too."""
    print(leaderboard.text_table(rows, level))
    print(leaderboard.legend(rows, level))
    print()
    return {layout.REPORTS_DIR / f"{stem}.csv": leaderboard.csv_text(rows).encode("utf-8"),
            layout.REPORTS_DIR / f"{stem}.md": leaderboard.markdown_table(rows, title, line, level).encode("utf-8")}


def run(cfg: Config, from_mlflow: bool = False, experiment: str | None = None):
    """Build, write and print the leaderboard; returns it as a pandas DataFrame."""
    if from_mlflow:
        return _run_from_mlflow(cfg, experiment or cfg.experiment)
    if experiment:
        raise ConfigError(f"--experiment = {experiment!r}: only applies with --from-mlflow "
                          f"(the comparison run goes to mlflow.experiment = {cfg.experiment!r})")

    rows = read_results.read_rows(cfg.model_ids())
    split = leaderboard.check_same_split(rows)
    manifest = _manifest()
    current = manifest.get("sha256")
    if current and current != split:
        _warn(f"the models were trained on split {split[:12]} but {layout.MANIFEST} is split {str(current)[:12]}; "
              f"run `dvc repro` to retrain them on the current split")
    rows, summary, line, images, level = _evaluate(cfg, rows)
    class_names = [str(c) for c in manifest.get("class_names") or ()]

    # everything is rendered in memory first: a failure here writes nothing
    figures = _figures(cfg, rows, summary, images, class_names)
    n_logged = model_runs.log_classical_rows(cfg.experiment, rows, class_names)
    outputs = _tables(rows, f"Leaderboard: {leaderboard.subtitle(summary)}", line, level, "leaderboard")
    outputs |= {layout.plot_path(name): plots.png_bytes(fig) for name, fig in figures.items()}
    outputs[layout.SUMMARY] = (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8")
    _write(outputs)

    run_id, n_linked, warnings = model_runs.log_comparison(cfg, rows, summary, list(outputs))
    for message in warnings:
        _warn(message)
    print(f"wrote {layout.REPORTS_DIR}/leaderboard.csv, leaderboard.md, summary.json and {len(figures)} plots in "
          f"{layout.PLOTS_DIR}/; MLflow run {run_id} (experiment {cfg.experiment!r}) is the parent of "
          f"{n_linked} of {len(rows)} model runs ({n_logged} classical runs logged now)")
    print(_register(rows, summary))
    print(line)
    return leaderboard.dataframe(rows)


def _register(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    """Register the chosen models (:mod:`pipeline.registry`); the line to print."""
    from pipeline import registry

    name, done, warnings = registry.register(rows, summary)
    for message in warnings:
        _warn(message)
    return registry.describe(name, done)


def _run_from_mlflow(cfg: Config, experiment: str):
    rows, split, missing = read_results.rows_from_mlflow(cfg.model_ids(), experiment, _manifest().get("sha256"))
    if missing:
        _warn(f"no FINISHED MLflow run on split {split[:12]} for: {leaderboard.name_list(missing, 10)}; left out")
    rows, summary, line, _, level = _evaluate(cfg, rows)
    print(f"from MLflow experiment {experiment!r}: latest FINISHED run of {len(rows)} models on split {split[:12]}")
    title = f"Leaderboard from MLflow experiment {experiment!r}: {leaderboard.subtitle(summary)}"
    _write(_tables(rows, title, line, level, "leaderboard_mlflow"))
    print(f"wrote {layout.REPORTS_DIR}/leaderboard_mlflow.csv and leaderboard_mlflow.md")
    print(line)
    return leaderboard.dataframe(rows)


def run_pair(cfg: Config, model_a: str, model_b: str) -> str:
    """``cvd compare --pair A B``: two configured models on the same test images; prints their
    accuracies and the comparison line (returned); nothing is written."""
    ids = cfg.model_ids()
    approach = {m: a for a, models in ids.items() for m in models}
    unknown = [m for m in (model_a, model_b) if m not in approach]
    if unknown:
        raise ConfigError(f"--pair: {', '.join(repr(m) for m in unknown)} not a configured model; configured: "
                          f"{leaderboard.name_list([m for models in ids.values() for m in models], 12)}")
    if model_a == model_b:
        raise ConfigError(f"--pair: needs two different models; got {model_a!r} twice")
    wanted: dict[str, list[str]] = {}
    for m in (model_a, model_b):
        wanted.setdefault(approach[m], []).append(m)
    rows = {r["model"]: r for r in read_results.read_rows(wanted)}
    leaderboard.check_same_split(list(rows.values()))
    a, b = rows[model_a], rows[model_b]
    images = read_results.read_test_images([a, b])
    settings = statistics.Settings.from_config(cfg)
    line = pair_line(a, b, settings.compare(images.correct(model_a), images.correct(model_b)), settings.level)
    print(f"{model_a} {100 * a['test_accuracy']:.2f} % vs {model_b} {100 * b['test_accuracy']:.2f} % test accuracy "
          f"on the same {images.n:,} test images")
    print(line)
    return line

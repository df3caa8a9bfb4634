"""DVC stage ``compare``: the leaderboard of every configured model, classical and deep.

Reads the per-model files (:mod:`pipeline.read_results`) of exactly the models params.yaml
configures, refuses models trained on different splits, and writes

* ``reports/leaderboard.csv`` / ``.md``  ranked by the test score of the metric
* ``reports/summary.json``   DVC metrics: the best of each approach (chosen on the validation
                              score of the metric) and their paired comparison on test (the verdict)
* ``reports/plots/*.png``    accuracy vs parameters, accuracy bars, the best models' confusion
                              matrices, CNN training curves, McNemar p-values of the top models,
                              the budget curve (accuracy vs training seconds, :mod:`comparison.budget`;
                              its points in ``reports/plots/budget_curve.csv``)
* ``reports/curve_plan.json`` the learning curve's models and the digests of their files
                              (:mod:`pipeline.curve_plan`)

Read -> compute (:mod:`comparison.statistics`, :mod:`comparison.leaderboard`,
:mod:`comparison.verdict`) -> render in memory (:mod:`comparison.figures`) -> write every file,
only when all of it succeeded -> log (:mod:`pipeline.model_runs`: each classical model's run,
from its files, and the ``comparison`` run, parent of every model run) -> register the chosen
models (:mod:`pipeline.registry`). The metric is ``evaluation.metric`` (:mod:`comparison.metrics`);
``auto`` weighs the training split's class counts in ``data/prepared/manifest.json`` (the test
images' when there is none).

``cvd compare --from-mlflow`` rebuilds the leaderboard from the latest FINISHED MLflow runs on
the current split into ``reports/leaderboard_mlflow.*``; ``cvd compare --pair A B`` is
:mod:`pipeline.pair`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from comparison import budget, confusion, figures, leaderboard, plots, statistics
from comparison.metrics import Metric
from comparison.verdict import budget_fields
from pipeline import curve_plan, data_runs, deep_runs, layout, model_runs, read_results
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.io import write_files
from pipeline.store import Guard, check_store, end_stale_runs, tracking_uri, unlogged_warning

PLOT_NAMES = figures.PLOT_NAMES


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _figures(cfg: Config, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
             images: statistics.TestImages, class_names: Sequence[str], histories: Mapping[str, Any],
             points: Sequence[Mapping[str, Any]], level: str) -> dict:
    """The plots by name (:func:`comparison.figures.compare_figures`) from the files they need,
    the CNNs' ``histories`` and the budget curve's ``points``."""
    best = [b["model"] for b in (summary["best_classical"], summary["best_deep"]) if b]
    chosen = confusion.confusion_models(rows, best=best)
    confusions = {r["model"]: read_results.read_confusion(r["approach"], r["model"]) for r in chosen}
    return figures.compare_figures(rows, summary, confusions, class_names, histories, images, cfg.evaluation.alpha,
                                   points, level)


def _budget(cfg: Config, best: Mapping[str, Any]) -> dict:
    """What the two compared models were given (:func:`comparison.verdict.budget_fields`)."""
    counts = read_results.read_manifest().get("counts") or {}
    return budget_fields(best["classical"], best["deep"], train_images=counts.get("train"),
                         val_images=counts.get("val"), search=cfg.classical.search)


def _evaluate(cfg: Config, rows: Sequence[Mapping[str, Any]]):
    """Ranked rows with their statistics, the summary with the verdict, its line, the test images,
    the interval's level and the metric (:func:`comparison.leaderboard.evaluate`)."""
    images = read_results.read_test_images(leaderboard.rank_rows(rows))
    metric = read_results.metric_for(cfg.evaluation.metric, images)
    settings = statistics.Settings.from_config(cfg, metric.name)
    rows, summary, line = leaderboard.evaluate(rows, images, metric, settings, lambda best: _budget(cfg, best))
    return rows, summary, line, images, settings.level, metric


def _tables(rows: Sequence[Mapping[str, Any]], title: str, line: str, level: str, metric: Metric,
            stem: str) -> dict[Path, bytes]:
    """The leaderboard's CSV and markdown files (``reports/<stem>.csv|md``), printed as a table too."""
    print(leaderboard.text_table(rows, level, metric))
    print(leaderboard.legend(rows, level, metric=metric))
    print()
    markdown = leaderboard.markdown_table(rows, title, line, level, metric)
    return {layout.REPORTS_DIR / f"{stem}.csv": leaderboard.csv_text(rows).encode("utf-8"),
            layout.REPORTS_DIR / f"{stem}.md": markdown.encode("utf-8")}


def run(cfg: Config, from_mlflow: bool = False, experiment: str | None = None):
    """Build, write and print the leaderboard; returns it as a pandas DataFrame."""
    if from_mlflow:
        return _run_from_mlflow(cfg, experiment or cfg.experiment)
    if experiment:
        raise ConfigError(f"--experiment = {experiment!r}: only applies with --from-mlflow "
                          f"(the comparison run goes to mlflow.experiment = {cfg.experiment!r})")

    check_store()
    rows = read_results.read_rows(cfg.model_ids())
    split = leaderboard.check_same_split(rows)
    manifest = read_results.read_manifest()
    current = manifest.get("sha256")
    if current and current != split:
        _warn(f"the models were trained on split {split[:12]} but {layout.MANIFEST} is split {str(current)[:12]}; "
              f"run `dvc repro` to retrain them on the current split")
    rows, summary, line, images, level, metric = _evaluate(cfg, rows)
    class_names = [str(c) for c in manifest.get("class_names") or ()]

    # everything is rendered in memory first: a failure here writes nothing
    histories = {arch: read_results.read_history(arch) for arch in cfg.model_ids()["deep"]}
    points = budget.budget_points(rows, histories, cfg.evaluation.confidence)
    drawn = _figures(cfg, rows, summary, images, class_names, histories, points, level)
    guard = Guard()  # a store that stops answering costs the MLflow runs (logged later), never the files
    guard(end_stale_runs, tracking_uri())  # runs of a killed stage or compare: KILLED, before new ones
    guard(data_runs.log_data_runs, cfg)  # prepare's and the feature sets' runs, from their files
    n_logged = ((guard(model_runs.log_classical_rows, cfg.experiment, rows, class_names) or 0)
                + (guard(deep_runs.log_deep_rows, cfg.experiment, rows) or 0))
    outputs = _tables(rows, f"Leaderboard: {leaderboard.subtitle(summary)}", line, level, metric, "leaderboard")
    outputs |= {layout.plot_path(name): plots.png_bytes(fig) for name, fig in drawn.items()}
    outputs[layout.BUDGET_CURVE_CSV] = budget.csv_text(points).encode("utf-8")
    outputs[layout.SUMMARY] = (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8")
    outputs[layout.CURVE_PLAN] = (json.dumps(curve_plan.build(cfg, summary), indent=2) + "\n").encode("utf-8")
    write_files(outputs)
    written = (f"wrote {layout.REPORTS_DIR}/leaderboard.csv, leaderboard.md, summary.json and {len(drawn)} plots in "
               f"{layout.PLOTS_DIR}/")
    model_runs.record_comparison(cfg, rows, summary, list(outputs), guard, n_logged, _warn, written)
    unlogged_warning(guard, "the comparison's files are")
    print(line)
    return leaderboard.dataframe(rows)


def _run_from_mlflow(cfg: Config, experiment: str):
    check_store()
    rows, split, missing = read_results.rows_from_mlflow(cfg.model_ids(), experiment, read_results.read_manifest().get("sha256"))
    if missing:
        _warn(f"no FINISHED MLflow run on split {split[:12]} for: {leaderboard.name_list(missing, 10)}; left out")
    rows, summary, line, _, level, metric = _evaluate(cfg, rows)
    print(f"from MLflow experiment {experiment!r}: latest FINISHED run of {len(rows)} models on split {split[:12]}")
    title = f"Leaderboard from MLflow experiment {experiment!r}: {leaderboard.subtitle(summary)}"
    write_files(_tables(rows, title, line, level, metric, "leaderboard_mlflow"))
    print(f"wrote {layout.REPORTS_DIR}/leaderboard_mlflow.csv and leaderboard_mlflow.md")
    print(line)
    return leaderboard.dataframe(rows)

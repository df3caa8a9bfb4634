"""DVC stage ``compare``: the leaderboard of every configured model, classical and deep.

Reads the per-model files (:mod:`pipeline.read_results`) of exactly the models params.yaml
configures, refuses models trained on different splits, and writes

* ``reports/leaderboard.csv`` / ``.md``  ranked by test accuracy
* ``reports/summary.json``   DVC metrics: the best of each approach (chosen on validation
                              accuracy) and their paired comparison on test (the verdict)
* ``reports/plots/*.png``    accuracy vs parameters, accuracy bars, the best models' confusion
                              matrices, CNN training curves, McNemar p-values of the top models

Read -> compute (:mod:`comparison.statistics`, :mod:`comparison.leaderboard`,
:mod:`comparison.verdict`) -> render in memory (:mod:`comparison.figures`) -> write every file,
only when all of it succeeded -> log (:mod:`pipeline.model_runs`: each classical model's run,
from its files, and the ``comparison`` run, parent of every model run) -> register the chosen
models (:mod:`pipeline.registry`).

``cvd compare --pair A B`` compares two configured models on the same test images and prints
the verdict-style line, writing nothing. ``cvd compare --from-mlflow`` rebuilds the leaderboard
from the latest FINISHED MLflow runs on the current split into ``reports/leaderboard_mlflow.*``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from comparison import confusion, figures, leaderboard, plots, statistics
from comparison.verdict import pair_line, verdict_fields, verdict_line
from pipeline import layout, model_runs, read_results, registry
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.io import write_files
from pipeline.stale_runs import end_stale_runs
from pipeline.tracking import tracking_uri

PLOT_NAMES = figures.PLOT_NAMES


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
    """The plots by name (:func:`comparison.figures.compare_figures`) from the files they need."""
    best = [b["model"] for b in (summary["best_classical"], summary["best_deep"]) if b]
    chosen = confusion.confusion_models(rows, best=best)
    confusions = {r["model"]: read_results.read_confusion(r["approach"], r["model"]) for r in chosen}
    histories = {arch: read_results.read_history(arch) for arch in cfg.model_ids()["deep"]}
    return figures.compare_figures(rows, summary, confusions, class_names, histories, images, cfg.evaluation.alpha)


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
    drawn = _figures(cfg, rows, summary, images, class_names)
    end_stale_runs(tracking_uri())  # runs of a killed stage or compare: KILLED, before logging new ones
    n_logged = model_runs.log_classical_rows(cfg.experiment, rows, class_names)
    outputs = _tables(rows, f"Leaderboard: {leaderboard.subtitle(summary)}", line, level, "leaderboard")
    outputs |= {layout.plot_path(name): plots.png_bytes(fig) for name, fig in drawn.items()}
    outputs[layout.SUMMARY] = (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8")
    write_files(outputs)

    run_id, n_linked, warnings = model_runs.log_comparison(cfg, rows, summary, list(outputs))
    for message in warnings:
        _warn(message)
    print(f"wrote {layout.REPORTS_DIR}/leaderboard.csv, leaderboard.md, summary.json and {len(drawn)} plots in "
          f"{layout.PLOTS_DIR}/; MLflow run {run_id} (experiment {cfg.experiment!r}) is the parent of "
          f"{n_linked} of {len(rows)} model runs ({n_logged} classical runs logged now)")
    print(registry.register_chosen(rows, summary, _warn))
    print(line)
    return leaderboard.dataframe(rows)


def _run_from_mlflow(cfg: Config, experiment: str):
    rows, split, missing = read_results.rows_from_mlflow(cfg.model_ids(), experiment, _manifest().get("sha256"))
    if missing:
        _warn(f"no FINISHED MLflow run on split {split[:12]} for: {leaderboard.name_list(missing, 10)}; left out")
    rows, summary, line, _, level = _evaluate(cfg, rows)
    print(f"from MLflow experiment {experiment!r}: latest FINISHED run of {len(rows)} models on split {split[:12]}")
    title = f"Leaderboard from MLflow experiment {experiment!r}: {leaderboard.subtitle(summary)}"
    write_files(_tables(rows, title, line, level, "leaderboard_mlflow"))
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

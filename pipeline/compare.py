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
(:mod:`pipeline.verdict`, :mod:`pipeline.leaderboard`) -> render in memory
(:mod:`pipeline.report_plots`) -> write every file atomically, only when all of it
succeeded -> log. Each classical model's MLflow run is logged here, from its files
(:mod:`pipeline.model_runs`: the ``train_classical`` stages import no MLflow or matplotlib, which
cost more than most of their fits; a model whose files did not change since they were logged
keeps its run). The CNN stages log their own runs (live epoch metrics; TensorFlow's import
dwarfs MLflow's), their ids are in the ``.run.json`` files. An MLflow run ``comparison`` gets the
files as artifacts, the summary and the verdict's numbers as metrics, and becomes the parent of
the model runs. Last, the validation-selected best model of each approach and the champion are
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

from pipeline import leaderboard, report_plots, results, verdict
from pipeline.config import Config
from pipeline.errors import ConfigError, DataError
from pipeline.io import atomic_path

REPORTS_DIR = Path("reports")
PLOTS_DIR = REPORTS_DIR / "plots"
MANIFEST = Path("data/prepared/manifest.json")
PLOT_NAMES = ("accuracy_vs_params", "accuracy_bars", "confusion_best", "training_curves", "pairwise_pvalues")
PAIRWISE_MODELS = 8  # the p-value heat map shows the top models by test accuracy


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _manifest() -> dict:
    """The prepared split's manifest, or ``{}`` when there is none here (e.g. a fresh clone)."""
    try:
        manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _figures(cfg: Config, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
             images: verdict.TestImages, class_names: Sequence[str]) -> dict:
    """The plots by name; reads the confusion rows and histories they need."""
    subtitle = leaderboard.subtitle(summary)
    best = [b["model"] for b in (summary["best_classical"], summary["best_deep"]) if b]
    chosen = report_plots.confusion_models(rows, best=best)
    confusions = {r["model"]: results.read_confusion(r["approach"], r["model"]) for r in chosen}
    classes = report_plots.class_order({c for pair in confusions.values() for names in pair for c in names},
                                       class_names)
    panels = [(r, report_plots.confusion_counts(*confusions[r["model"]], classes)) for r in chosen]
    histories = {arch: results.read_history(arch) for arch in cfg.model_ids()["deep"]}
    top = list(rows[:PAIRWISE_MODELS])
    return {
        "accuracy_vs_params": report_plots.plot_accuracy_vs_params(rows, subtitle),
        "accuracy_bars": report_plots.plot_accuracy_bars(rows, subtitle),
        "confusion_best": report_plots.plot_confusion_best(panels, classes, subtitle),
        "training_curves": report_plots.plot_training_curves(histories, subtitle),
        "pairwise_pvalues": report_plots.plot_pairwise_pvalues(
            top, verdict.pairwise_pvalues([r["model"] for r in top], images), subtitle, cfg.evaluation.alpha),
    }


def _write(outputs: Mapping[Path, bytes]) -> None:
    for dest, content in outputs.items():
        with atomic_path(dest) as tmp:
            tmp.write_bytes(content)


def _log_classical_runs(cfg: Config, rows: list[dict], class_names: Sequence[str]) -> int:
    """Fill ``mlflow_run_id`` of the classical rows with their runs, logged now from their files
    unless already logged (:mod:`pipeline.model_runs`); returns how many were logged now. A row
    whose ``.run.json`` names a run keeps it; one with no model file is left without a run."""
    from pipeline.model_runs import log_classical_runs, model_path
    from pipeline.tracking import experiment_id_of

    todo = [r for r in rows if r["approach"] == "classical" and not r["mlflow_run_id"]
            and model_path(r["model"]).is_file()]
    if not todo:
        return 0
    run_ids, new = log_classical_runs(experiment_id_of(cfg.experiment), todo, class_names)
    for row in rows:
        row["mlflow_run_id"] = run_ids.get(row["model"], row["mlflow_run_id"])
    return new


def _register(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    """Register the chosen models (:mod:`pipeline.registry`); the line to print."""
    from pipeline import registry

    name, done, warnings = registry.register(rows, summary)
    for message in warnings:
        _warn(message)
    return registry.describe(name, done)


def _log_comparison(cfg: Config, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
                    files: Sequence[Path]) -> tuple[str, int, list[str]]:
    """The ``comparison`` run, parent of the model runs it read; returns (run id, runs linked, warnings)."""
    import mlflow

    from pipeline.tracking import link_to_parent, log_metrics, stage_run

    children = {r["model"]: r["mlflow_run_id"] for r in rows if r["mlflow_run_id"]}
    without_id = [r["model"] for r in rows if not r["mlflow_run_id"]]
    warnings = []
    if without_id:
        warnings.append(f"no mlflow_run_id in the .run.json of {leaderboard.name_list(without_id)}; "
                        f"not linked to the comparison run")
    tags = {"approach": "comparison", "model_runs": ",".join(children.values()), "winner": str(summary["winner"]),
            "selection": summary["selection"]}
    params = {"features.names": list(cfg.features.names), "classical.classifiers": list(cfg.classical.classifiers),
              "cnn.architectures": list(cfg.cnn.architectures)}
    with stage_run("compare", experiment=cfg.experiment, run_name="comparison", dataset=summary["dataset"],
                   split_sha256=summary["split_sha256"], tags=tags, params=params) as run:
        parent = run.info.run_id
        best_c, best_d = summary["best_classical"] or {}, summary["best_deep"] or {}
        numbers = {key: value for key, value in (summary["verdict"] or {}).items() if key != "winner"}
        if numbers:
            numbers["significant"] = int(numbers["significant"])  # a bool is not a metric
        log_metrics({"best_classical_accuracy": best_c.get("test_accuracy"),
                     "best_deep_accuracy": best_d.get("test_accuracy"),
                     # over the seeds (evaluation.repeats); None (not logged) when not recorded
                     "best_classical_accuracy_mean": best_c.get("test_accuracy_mean"),
                     "best_classical_accuracy_sd": best_c.get("test_accuracy_sd"),
                     "best_deep_accuracy_mean": best_d.get("test_accuracy_mean"),
                     "best_deep_accuracy_sd": best_d.get("test_accuracy_sd"),
                     "accuracy_difference": summary["accuracy_difference"],
                     "n_models": summary["n_models"], "verdict": numbers}, run_id=parent)
        for path in files:
            mlflow.log_artifact(str(path), artifact_path="plots" if path.parent == PLOTS_DIR else None,
                                run_id=parent)
        n_linked, failed = link_to_parent(parent, {f"{model} ({rid})": rid for model, rid in children.items()})
    if failed:
        warnings.append(f"MLflow run(s) of {leaderboard.name_list([label for label, _ in failed], 4)} not found "
                        f"or not writable, not linked to the comparison run (first error: {failed[0][1]})")
    return parent, n_linked, warnings


def _rows_from_mlflow(cfg: Config, experiment: str) -> tuple[list[dict], str]:
    """Rows of the configured models from their latest FINISHED MLflow runs, on one split."""
    from pipeline.tracking import latest_finished_runs

    latest, split = latest_finished_runs(experiment, leaderboard.APPROACHES, _manifest().get("sha256"))
    rows, missing = [], []
    for approach, ids in cfg.model_ids().items():
        for model_id in ids:
            run = latest.get((approach, model_id))
            if run is None:
                missing.append(model_id)
                continue
            data = {**run.data.metrics, **run.data.tags, "mlflow_run_id": run.info.run_id}
            rows.append(results.model_row(approach, model_id, data, where=f"MLflow run {run.info.run_id} ({model_id})",
                                          fix=f"rerun `dvc repro {results.stage_for(approach, model_id)}`"))
    if not rows:
        raise DataError(f"MLflow experiment {experiment!r}: none of the configured models has a FINISHED run "
                        f"on split {split[:12]}")
    if missing:
        _warn(f"no FINISHED MLflow run on split {split[:12]} for: {leaderboard.name_list(missing, 10)}; left out")
    return rows, split


def _evaluate(cfg: Config, rows: Sequence[Mapping[str, Any]]):
    """Ranked rows with their statistics, the summary with the verdict, its line, the test images."""
    settings = verdict.Settings.from_config(cfg)
    rows = leaderboard.rank_rows(rows)
    images = verdict.read_test_images(rows)
    rows = verdict.with_statistics(rows, images, settings)
    best = leaderboard.select_best(rows)
    comparison = None
    if best["classical"] and best["deep"]:  # a = deep, b = classical: difference = deep - classical
        comparison = settings.compare(images.correct(best["deep"]["model"]), images.correct(best["classical"]["model"]))
    summary = leaderboard.build_summary(rows, verdict.verdict_fields(comparison))
    return rows, summary, verdict.verdict_line(summary, settings.level), images, settings.level


def run(cfg: Config, from_mlflow: bool = False, experiment: str | None = None):
    """Build, write and print the leaderboard; returns it as a pandas DataFrame."""
    if from_mlflow:
        return _run_from_mlflow(cfg, experiment or cfg.experiment)
    if experiment:
        raise ConfigError(f"--experiment = {experiment!r}: only applies with --from-mlflow "
                          f"(the comparison run goes to mlflow.experiment = {cfg.experiment!r})")

    rows = results.read_rows(cfg.model_ids())
    split = leaderboard.check_same_split(rows)
    manifest = _manifest()
    current = manifest.get("sha256")
    if current and current != split:
        _warn(f"the models were trained on split {split[:12]} but {MANIFEST} is split {str(current)[:12]}; "
              f"run `dvc repro` to retrain them on the current split")
    rows, summary, line, images, level = _evaluate(cfg, rows)
    subtitle = leaderboard.subtitle(summary)
    class_names = [str(c) for c in manifest.get("class_names") or ()]

    # everything is rendered in memory first: a failure here writes nothing
    figures = _figures(cfg, rows, summary, images, class_names)
    n_logged = _log_classical_runs(cfg, rows, class_names)
    outputs: dict[Path, bytes] = {
        REPORTS_DIR / "leaderboard.csv": leaderboard.csv_text(rows).encode("utf-8"),
        REPORTS_DIR / "leaderboard.md": leaderboard.markdown_table(rows, f"Leaderboard: {subtitle}", line, level)
        .encode("utf-8"),
        **{PLOTS_DIR / f"{name}.png": report_plots.png_bytes(fig) for name, fig in figures.items()},
        REPORTS_DIR / "summary.json": (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"),
    }
    _write(outputs)

    print(leaderboard.text_table(rows, level))
    print(leaderboard.legend(rows, level))
    print()
    run_id, n_linked, warnings = _log_comparison(cfg, rows, summary, list(outputs))
    for message in warnings:
        _warn(message)
    print(f"wrote {REPORTS_DIR}/leaderboard.csv, leaderboard.md, summary.json and {len(figures)} plots in "
          f"{PLOTS_DIR}/; MLflow run {run_id} (experiment {cfg.experiment!r}) is the parent of "
          f"{n_linked} of {len(rows)} model runs ({n_logged} classical runs logged now)")
    print(_register(rows, summary))
    print(line)
    return leaderboard.dataframe(rows)


def _run_from_mlflow(cfg: Config, experiment: str):
    rows, split = _rows_from_mlflow(cfg, experiment)
    rows, summary, line, _, level = _evaluate(cfg, rows)
    title = f"Leaderboard from MLflow experiment {experiment!r}: {leaderboard.subtitle(summary)}"
    _write({
        REPORTS_DIR / "leaderboard_mlflow.csv": leaderboard.csv_text(rows).encode("utf-8"),
        REPORTS_DIR / "leaderboard_mlflow.md": leaderboard.markdown_table(rows, title, line, level).encode("utf-8"),
    })
    print(f"from MLflow experiment {experiment!r}: latest FINISHED run of {len(rows)} models on split {split[:12]}")
    print(leaderboard.text_table(rows, level))
    print(leaderboard.legend(rows, level))
    print()
    print(f"wrote {REPORTS_DIR}/leaderboard_mlflow.csv and leaderboard_mlflow.md")
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
    rows = {r["model"]: r for r in results.read_rows(wanted)}
    leaderboard.check_same_split(list(rows.values()))
    a, b = rows[model_a], rows[model_b]
    images = verdict.read_test_images([a, b])
    settings = verdict.Settings.from_config(cfg)
    line = verdict.pair_line(a, b, settings.compare(images.correct(model_a), images.correct(model_b)),
                             settings.level)
    print(f"{model_a} {100 * a['test_accuracy']:.2f} % vs {model_b} {100 * b['test_accuracy']:.2f} % test accuracy "
          f"on the same {images.n:,} test images")
    print(line)
    return line

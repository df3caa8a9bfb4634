"""``cvd log``: log to MLflow what a stage could not, from the files the stages wrote.

A stage whose MLflow logging fails after its work keeps every output (exit 0, one warning
line: :mod:`pipeline.tracking`), so DVC records it and nothing is retrained. This logs
what is missing, once: the run of every configured model that has none (classical models:
:func:`pipeline.model_runs.log_classical_rows`; a CNN whose stage could not log:
:func:`pipeline.deep_runs.log_deep_rows`), then the ``comparison`` run of the current
``reports/`` (unless one FINISHED run was logged from these very files: tag ``result_sha256``)
and the registered champions. ``compare`` logs the same way after writing its files
(:func:`pipeline.model_runs.record_comparison`), so the next ``dvc repro`` that reaches ``compare`` logs them too.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from pipeline import deep_runs, layout, model_runs, read_results
from pipeline.config import Config
from pipeline.errors import DataError
from pipeline.io import read_json
from pipeline.store import Guard, StoreUnreachable, check_store


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def compare_files() -> list[Path]:
    """The files ``compare`` wrote (what its comparison run holds), in the order it lists them."""
    from comparison.figures import PLOT_NAMES

    tables = [layout.REPORTS_DIR / "leaderboard.csv", layout.REPORTS_DIR / "leaderboard.md"]
    plots = [layout.plot_path(name) for name in PLOT_NAMES if layout.plot_path(name).is_file()]
    points = [layout.BUDGET_CURVE_CSV] if layout.BUDGET_CURVE_CSV.is_file() else []
    plan = [layout.CURVE_PLAN] if layout.CURVE_PLAN.is_file() else []
    return [*tables, *plots, *points, layout.SUMMARY, *plan]


def _comparison_logged(cfg: Config, files: Sequence[Path]) -> bool:
    from mlflow.tracking import MlflowClient

    from pipeline.store import tracking_uri
    from pipeline.tracking import experiment_id_of

    query = (f"tags.approach = 'comparison' AND tags.{model_runs.RESULT_TAG} = '{model_runs.comparison_digest(files)}'"
             f" AND attributes.status = 'FINISHED'")
    return bool(MlflowClient(tracking_uri=tracking_uri()).search_runs([experiment_id_of(cfg.experiment)], query,
                                                                      max_results=1))


def run(cfg: Config) -> int:
    """Log every missing run of the configured models and of the last comparison; returns how
    many runs were logged now."""
    uri = check_store()
    rows = read_results.read_rows(cfg.model_ids())
    manifest = read_json(layout.MANIFEST) if layout.MANIFEST.is_file() else {}
    guard = Guard()
    class_names = [str(c) for c in manifest.get("class_names", ())]
    n_logged = ((guard(model_runs.log_classical_rows, cfg.experiment, rows, class_names) or 0)
                + (guard(deep_runs.log_deep_rows, cfg.experiment, rows) or 0))
    print(f"{n_logged} model runs logged now to {uri} (experiment {cfg.experiment!r}); "
          f"{sum(bool(r['mlflow_run_id']) for r in rows)} of {len(rows)} configured models have a run")
    files = compare_files()
    if not all(path.is_file() for path in [*files[:2], layout.SUMMARY]):
        raise DataError(f"no {layout.SUMMARY} or leaderboard here: run `dvc repro compare` to compare the models")
    summary = read_json(layout.SUMMARY)
    if not guard.failed and guard(_comparison_logged, cfg, files) is False:
        model_runs.record_comparison(cfg, rows, summary, files, guard, n_logged, _warn)
        n_logged += not guard.failed
    elif not guard.failed:
        print("the comparison run of these reports/ files is logged already")
    if guard.failed:
        raise StoreUnreachable(f"MLflow logging to {uri} failed ({guard.error}); run `cvd log` again")
    return n_logged

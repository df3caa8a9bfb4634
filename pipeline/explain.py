"""DVC stage ``explain`` (after ``compare``): where the best classical and the best deep model
differ, image by image, and the HTML report.

The two models are the ones ``compare`` chose on validation accuracy
(``reports/summary.json``: ``best_classical``, ``best_deep``); their per-image test
predictions (``predictions/<id>/test.csv``) pair up by position in the split. Writes

* ``reports/explain/per_class.csv|png``    test accuracy per class of both models and the
                                            difference (deep - classical, the verdict's sign)
* ``reports/explain/disagreements.csv``     every test image exactly one of them gets right
* ``reports/explain/only_classical_right.png``, ``only_deep_right.png``  those images, enlarged
                                            without smoothing, labelled with the true class and
                                            each model's prediction and confidence
* ``reports/explain/mistakes_classical.png``, ``mistakes_deep.png``  each model's most confident
                                            wrong predictions
* ``reports/explain/confusion_difference.csv|png``  confusion counts, deep minus classical
* ``reports/explain/summary.json``          the counts behind the pictures
* ``reports/explain/visualize/``            ``cvd visualize``'s drawings of a few test images
                                            (disagreements first)
* ``reports/index.html``                    the page (:func:`pipeline.report_html.build_page`)
* ``reports/curve/``                        the learning curve and its crossover, from the points of the
                                            ``learning_curve`` stages (:mod:`pipeline.curve_report`)

and logs the page and its pictures as artifacts (``report/``) of the newest ``comparison``
MLflow run on this split; when there is none, or MLflow fails, it says so in one line and
the stage still succeeds. "Confidence" is the model's score of its predicted class: a
probability (softmax, predict_proba) or, for the SVMs, a decision-function value -- the
labels say which.

The analysis and the figures are :mod:`comparison.explain` and :mod:`comparison.explain_figures`.
"""

from __future__ import annotations

import csv
from typing import Any, Mapping

from comparison.explain import aligned, disagreements, pictures_to_draw  # noqa: F401  (explain.aligned: tests)
from comparison.explain_figures import analyse
from comparison.leaderboard import subtitle
from comparison.statistics import Settings
from comparison.verdict import verdict_line
from pipeline import layout, read_results, report_html, visualize
from pipeline.config import Config
from pipeline.curve_report import curve_report
from pipeline.errors import DataError
from pipeline.io import atomic_path, load_split, read_json, write_files, write_json
from pipeline.report_html import build_page  # noqa: F401  (explain.build_page: tests)

PLOTS = ("accuracy_vs_params", "accuracy_bars", "pairwise_pvalues", "confusion_best", "training_curves",
         "budget_curve")
VISUALIZED = 3  # test images drawn step by step on the page


def best_pair(summary: Mapping[str, Any]) -> tuple[str, str]:
    c, d = summary.get("best_classical"), summary.get("best_deep")
    if not (c and d):
        raise DataError(f"{layout.SUMMARY}: explain needs a best classical and a best deep model; configure at least "
                        f"one of each (features.names + classical.classifiers, cnn.architectures) and run `dvc repro`")
    return c["model"], d["model"]


def _read_leaderboard() -> list[dict[str, str]]:
    if not layout.LEADERBOARD.is_file():
        raise DataError(f"{layout.LEADERBOARD}: not found (run `dvc repro compare`)")
    with layout.LEADERBOARD.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _log_to_comparison(cfg: Config, split_sha256: str) -> str:
    """Log the page and its pictures to the newest FINISHED comparison run on this split; a
    one-line message either way, never an exception."""
    try:
        import mlflow

        from pipeline.comparison_run import newest_comparison_run

        run, reason = newest_comparison_run(cfg.experiment, split_sha256)
        if run is None:
            return f"MLflow: {reason}; the report was not logged"
        run_id = run.info.run_id
        client = mlflow.MlflowClient()
        client.log_artifact(run_id, str(layout.INDEX), "report")
        client.log_artifacts(run_id, str(layout.EXPLAIN_DIR), "report/explain")
        if layout.PLOTS_DIR.is_dir():
            client.log_artifacts(run_id, str(layout.PLOTS_DIR), "report/plots")
        return f"MLflow: logged the report to comparison run {run_id} (artifacts report/index.html)"
    except Exception as exc:  # logging is a convenience: never fail the stage for it
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        return f"MLflow: the report was not logged ({type(exc).__name__}: {first})"


def run(cfg: Config) -> dict:
    from pipeline.store import check_store

    check_store()
    summary = read_json(layout.SUMMARY)
    names = best_pair(summary)
    classical, deep = aligned(*(read_results.read_predictions(name, "test") for name in names), names)
    split = load_split(layout.SPLIT)
    if split.sha256 != summary.get("split_sha256"):
        raise DataError(f"{layout.SUMMARY} is for split {str(summary.get('split_sha256'))[:12]} but {layout.SPLIT} "
                        f"is split {split.sha256[:12]}; run `dvc repro`")
    images = split.x["test"]
    if classical.index.max() >= len(images):
        raise DataError(f"{layout.predictions_path(names[0], 'test')} has index {int(classical.index.max())} beyond "
                        f"the {len(images)} test images of {layout.SPLIT}; run `dvc repro`")
    leaderboard_rows = _read_leaderboard()
    level = Settings.from_config(cfg).level

    # everything is rendered in memory first; a failure writes nothing
    files, counts = analyse(classical, deep, images, split.class_names, names)
    only_c, only_d = disagreements(classical, deep)
    chosen = pictures_to_draw(only_c, only_d, len(images), VISUALIZED, cfg.seed)
    pictures = visualize.split_pictures(split, "test", chosen)
    drawings = visualize.render(pictures, visualize.prepare_tools(cfg, split, None, pictures))
    curve_files, curve_section, crossover = curve_report(cfg, split.sha256, subtitle(summary), level)
    verdict = verdict_line(summary, level) + (f". Learning curve: {crossover}" if crossover else "")
    html_text = build_page(summary, verdict, leaderboard_rows, list(files), counts,
                           [p.name for p in pictures], list(drawings), level,
                           [name for name in PLOTS if layout.plot_path(name).is_file()],
                           [curve_section] if curve_section else [])

    outputs = {layout.EXPLAIN_DIR / name: content for name, content in files.items()}
    outputs |= {layout.EXPLAIN_DIR / "visualize" / rel: content for rel, content in drawings.items()} | curve_files
    write_files(outputs)
    write_json(layout.EXPLAIN_DIR / "summary.json", {k: v for k, v in counts.items() if k != "per_class_rows"})
    missing = report_html.missing_images(html_text, layout.REPORTS_DIR)
    if missing:  # a bug, not a user mistake: the page would show broken images
        raise RuntimeError(f"{layout.INDEX} would link missing files: {', '.join(missing[:5])}")
    with atomic_path(layout.INDEX) as tmp:
        tmp.write_text(html_text, encoding="utf-8")

    print(f"{names[0]} (classical) vs {names[1]} (deep) on {counts['n_test']:,} test images: "
          f"{counts['only_classical_right']} only classical right, {counts['only_deep_right']} only deep right, "
          f"{counts['both_wrong']} both wrong")
    print(f"wrote {len(outputs) + 1} files in {layout.EXPLAIN_DIR}/, {layout.CURVE_REPORT_DIR}/ and {layout.INDEX}")
    if crossover:
        print(f"learning curve: {crossover}")
    print(_log_to_comparison(cfg, split.sha256))
    return counts

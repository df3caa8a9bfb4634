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
* ``reports/index.html``                    the page (:mod:`pipeline.report_html`)

and logs the page and its pictures as artifacts (``report/``) of the newest ``comparison``
MLflow run on this split; when there is none, or MLflow fails, it says so in one line and
the stage still succeeds. "Confidence" is the model's score of its predicted class: a
probability (softmax, predict_proba) or, for the SVMs, a decision-function value -- the
labels say which.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline import report_html, results, visualize
from pipeline.config import Config
from pipeline.errors import DataError
from pipeline.io import atomic_path, load_split, read_json, write_json
from pipeline.predictions import Predictions

REPORTS_DIR = Path("reports")
EXPLAIN_DIR = REPORTS_DIR / "explain"
INDEX = REPORTS_DIR / "index.html"
SUMMARY = REPORTS_DIR / "summary.json"
LEADERBOARD = REPORTS_DIR / "leaderboard.csv"
PLOTS = ("accuracy_vs_params", "accuracy_bars", "pairwise_pvalues", "confusion_best", "training_curves")
GALLERY_LIMIT = 40  # tiles per disagreement gallery (the CSV lists every image)
MISTAKES = 16  # most confident mistakes shown per model
VISUALIZED = 3  # test images drawn step by step on the page
TILE_SCALE = 4  # gallery display pixels per image pixel


# --------------------------------------------------------------------------- pure parts
def aligned(classical: Predictions, deep: Predictions, names: tuple[str, str]) -> tuple[Predictions, Predictions]:
    """Both models' test predictions in split order; :class:`DataError` unless they cover the
    same images with the same labels."""
    def ordered(p: Predictions) -> Predictions:
        order = np.argsort(p.index, kind="stable")
        return Predictions(p.index[order], p.y_true[order], p.y_pred[order], p.scores[order], p.score_kind)

    a, b = ordered(classical), ordered(deep)
    if not np.array_equal(a.index, b.index) or not np.array_equal(a.y_true, b.y_true):
        raise DataError(f"predictions/{names[0]}/test.csv and predictions/{names[1]}/test.csv cover different test "
                        f"images or labels; rerun `dvc repro` so both use the current split")
    return a, b


def disagreements(classical: Predictions, deep: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """Split positions of the test images only the classical model gets right, and of those
    only the deep model gets right (aligned predictions)."""
    c, d = classical.correct, deep.correct
    return classical.index[c & ~d], classical.index[d & ~c]


def per_class(classical: Predictions, deep: Predictions, class_names: Sequence[str]) -> list[dict]:
    """Per class: test images, each model's accuracy on them, and deep - classical."""
    rows = []
    for k, name in enumerate(class_names):
        mine = classical.y_true == k
        n = int(mine.sum())
        acc_c = float(classical.correct[mine].mean()) if n else float("nan")
        acc_d = float(deep.correct[mine].mean()) if n else float("nan")
        rows.append({"class": name, "n_test": n, "classical_accuracy": round(acc_c, 6),
                     "deep_accuracy": round(acc_d, 6), "difference": round(acc_d - acc_c, 6)})
    return rows


def confidence(p: Predictions) -> np.ndarray:
    """Each image's score of the class the model predicted."""
    return p.scores[np.arange(len(p)), p.y_pred]


def confident_mistakes(p: Predictions, count: int) -> np.ndarray:
    """Rows (positions in ``p``) of the ``count`` wrong predictions with the highest score."""
    wrong = np.flatnonzero(~p.correct)
    order = np.lexsort((p.index[wrong], -confidence(p)[wrong]))
    return wrong[order][:count]


def confusion(p: Predictions, n_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]``."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (p.y_true, p.y_pred), 1)
    return counts


def class_names_for(names: Sequence[str], n_scores: int) -> list[str]:
    return list(names) + [str(k) for k in range(len(names), n_scores)]


# --------------------------------------------------------------------------- figures
def _score(p: Predictions, row: int) -> str:
    value = float(p.scores[row, p.y_pred[row]])
    return f"{value:.2f}" if p.score_kind == "probability" else f"score {value:.2g}"


def gallery_figure(images: np.ndarray, tiles: Sequence[tuple[int, str, str]], title: str, columns: int = 8):
    """Tiles of ``(image position, label, colour)``: each image enlarged without smoothing."""
    from features.drawing import as_rgb, upscale
    from matplotlib.figure import Figure

    columns = min(columns, max(len(tiles), 4))  # a few tiles keep their size, not the full width
    rows = max(1, int(np.ceil(len(tiles) / columns)))
    fig = Figure(figsize=(1.45 * columns, 1.95 * rows + 0.7), dpi=100)
    axes = np.atleast_2d(fig.subplots(rows, columns, squeeze=False))
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, (position, label, colour) in zip(axes.ravel(), tiles):
        ax.imshow(upscale(as_rgb(images[position]), TILE_SCALE), interpolation="nearest")
        ax.set_title(label, fontsize=6.5, color=colour, loc="left")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(top=1 - 0.65 / (1.95 * rows + 0.7), hspace=0.7, wspace=0.15, left=0.01, right=0.99, bottom=0.01)
    return fig


def per_class_figure(rows: Sequence[Mapping[str, Any]], classical: str, deep: str):
    from matplotlib.figure import Figure

    names = [r["class"] for r in rows]
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6.0, 0.6 * len(rows) + 2), 5.2), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    top.bar(x - 0.2, [100 * r["classical_accuracy"] for r in rows], 0.4, label=f"classical: {classical}", color="#4c72b0")
    top.bar(x + 0.2, [100 * r["deep_accuracy"] for r in rows], 0.4, label=f"deep: {deep}", color="#dd8452")
    low = min([100 * min(r["classical_accuracy"], r["deep_accuracy"]) for r in rows if r["n_test"]] or [0])
    top.set_ylim(max(0, low - 5), 100.5)
    top.set_ylabel("test accuracy %")
    top.legend(fontsize=8, loc="lower left")
    diff = [100 * r["difference"] for r in rows]
    bottom.bar(x, diff, 0.6, color=["#dd8452" if v > 0 else "#4c72b0" for v in diff])
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_ylabel("deep - classical\n(points)")
    bottom.set_xticks(x, names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right", fontsize=8)
    fig.suptitle("Per-class test accuracy of the best model of each approach", fontsize=10)
    return fig


def confusion_difference_figure(diff: np.ndarray, names: Sequence[str], classical: str, deep: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.0, 0.5 * len(names) + 2.5), max(4.5, 0.5 * len(names) + 2)), dpi=100,
                 layout="constrained")
    ax = fig.subplots()
    limit = max(1, int(np.abs(diff).max()))
    shown = ax.imshow(diff, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (i, j), v in np.ndenumerate(diff):
        if v:
            ax.text(j, i, f"{v:+d}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(shown, ax=ax, shrink=0.8, label=f"images: {deep} minus {classical}")
    ax.set_title(f"Confusion difference, deep ({deep}) - classical ({classical}):\non the diagonal > 0 deep gets more "
                 f"right, off it > 0 deep makes that mistake more", fontsize=9)
    return fig


def png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, metadata={"Software": None})
    return buf.getvalue()


def csv_bytes(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- the stage
def best_pair(summary: Mapping[str, Any]) -> tuple[str, str]:
    c, d = summary.get("best_classical"), summary.get("best_deep")
    if not (c and d):
        raise DataError(f"{SUMMARY}: explain needs a best classical and a best deep model; configure at least one "
                        f"of each (features.names + classical.classifiers, cnn.architectures) and run `dvc repro`")
    return c["model"], d["model"]


def pictures_to_draw(only_c: np.ndarray, only_d: np.ndarray, n_test: int, count: int, seed: int) -> list[int]:
    """Up to ``count`` test positions: disagreements first (alternating), then seeded picks."""
    chosen: list[int] = []
    for pair in zip(list(only_c) + [None] * len(only_d), list(only_d) + [None] * len(only_c)):
        chosen += [int(i) for i in pair if i is not None and int(i) not in chosen]
    rest = [int(i) for i in np.random.default_rng(seed).permutation(n_test) if int(i) not in chosen]
    return (chosen + rest)[:count]


def analyse(classical: Predictions, deep: Predictions, images: np.ndarray, class_names: Sequence[str],
            names: tuple[str, str]) -> tuple[dict[str, bytes], dict]:
    """Every file of reports/explain/ but the drawings, rendered in memory, and the counts."""
    cname, dname = names
    k = max(len(class_names), classical.scores.shape[1], deep.scores.shape[1])
    labels = class_names_for(class_names, k)
    only_c, only_d = disagreements(classical, deep)
    row_of = {int(i): r for r, i in enumerate(classical.index)}

    def tile(position: int) -> tuple[int, str, str]:
        r = row_of[position]
        text = (f"#{position} true {labels[classical.y_true[r]]}\nC: {labels[classical.y_pred[r]]} "
                f"({_score(classical, r)})\nD: {labels[deep.y_pred[r]]} ({_score(deep, r)})")
        return position, text, "black"

    files: dict[str, bytes] = {}
    classes = per_class(classical, deep, labels)
    files["per_class.csv"] = csv_bytes(classes, ["class", "n_test", "classical_accuracy", "deep_accuracy", "difference"])
    files["per_class.png"] = png(per_class_figure(classes, cname, dname))
    disagreeing = [{"index": int(i), "true": labels[classical.y_true[row_of[int(i)]]], "right": who,
                    "classical_pred": labels[classical.y_pred[row_of[int(i)]]],
                    "classical_score": float(confidence(classical)[row_of[int(i)]]),
                    "deep_pred": labels[deep.y_pred[row_of[int(i)]]],
                    "deep_score": float(confidence(deep)[row_of[int(i)]])}
                   for who, group in (("classical", only_c), ("deep", only_d)) for i in group]
    files["disagreements.csv"] = csv_bytes(disagreeing, ["index", "true", "right", "classical_pred", "classical_score",
                                                         "deep_pred", "deep_score"])
    for stem, group, who in (("only_classical_right", only_c, f"classical {cname} right, deep {dname} wrong"),
                             ("only_deep_right", only_d, f"deep {dname} right, classical {cname} wrong")):
        if len(group):
            shown = f"{min(len(group), GALLERY_LIMIT)} of {len(group)}" if len(group) > GALLERY_LIMIT else len(group)
            files[f"{stem}.png"] = png(gallery_figure(images, [tile(int(i)) for i in group[:GALLERY_LIMIT]],
                                                      f"{who}:\n{shown} test images (C = classical, D = deep)"))
    for stem, p, model in (("mistakes_classical", classical, cname), ("mistakes_deep", deep, dname)):
        rows = confident_mistakes(p, MISTAKES)
        if len(rows):
            files[f"{stem}.png"] = png(gallery_figure(
                images, [tile(int(p.index[r])) for r in rows],
                f"{model}: its {len(rows)} most confident mistakes\nof {int((~p.correct).sum())} (C = classical, D = deep)"))
    diff = confusion(deep, k) - confusion(classical, k)
    files["confusion_difference.csv"] = csv_bytes(
        [{"actual": labels[i], "predicted": labels[j], "deep_minus_classical": int(v)}
         for (i, j), v in np.ndenumerate(diff) if v], ["actual", "predicted", "deep_minus_classical"])
    files["confusion_difference.png"] = png(confusion_difference_figure(diff, labels, cname, dname))
    counts = {"classical": cname, "deep": dname, "n_test": int(len(classical)),
              "only_classical_right": int(len(only_c)), "only_deep_right": int(len(only_d)),
              "both_wrong": int((~classical.correct & ~deep.correct).sum()),
              "classical_mistakes": int((~classical.correct).sum()), "deep_mistakes": int((~deep.correct).sum()),
              "per_class_difference": {r["class"]: r["difference"] for r in classes}, "per_class_rows": classes}
    return files, counts


def _read_leaderboard() -> list[dict[str, str]]:
    if not LEADERBOARD.is_file():
        raise DataError(f"{LEADERBOARD}: not found (run `dvc repro compare`)")
    with LEADERBOARD.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


VISUAL_CAPTIONS = {"image": "the test image"}  # the other drawings are titled by their own figures


def build_page(summary: Mapping[str, Any], verdict: str, leaderboard: Sequence[Mapping[str, str]],
               explain_files: Sequence[str], counts: Mapping[str, Any], drawn: Sequence[str],
               visual_files: Sequence[str], level: str, plots: Sequence[str] = ()) -> str:
    """reports/index.html from what exists: ``explain_files`` (names in reports/explain/),
    ``visual_files`` (paths under reports/explain/visualize/), ``drawn`` (image folder names),
    ``plots`` (compare's plots in reports/plots/, by name)."""
    from pipeline.report_html import Picture, Section, Table, leaderboard_table, page

    c, d = counts["classical"], counts["deep"]
    have = set(explain_files)
    ex = EXPLAIN_DIR.relative_to(REPORTS_DIR).as_posix()
    plot_pictures = [Picture(f"plots/{name}.png", name.replace("_", " "), width=560) for name in plots]
    sections = [
        Section("Leaderboard", [f"Ranked by test accuracy; ★ = the best model of each approach, chosen on validation "
                                f"accuracy, which the verdict compares. {summary.get('dataset', '')}, "
                                f"{counts['n_test']:,} test images."],
                tables=[leaderboard_table(leaderboard, [c, d], level)], pictures=plot_pictures),
        Section("Per class", [f"Test accuracy of {c} (classical) and {d} (deep) on each class, and the difference "
                              f"(deep - classical, in points)."],
                tables=[Table(["class", "test images", f"{c} %", f"{d} %", "deep - classical"],
                              [[r["class"], r["n_test"], f"{100 * r['classical_accuracy']:.1f}",
                                f"{100 * r['deep_accuracy']:.1f}", f"{100 * r['difference']:+.1f}"]
                               for r in counts["per_class_rows"]])],
                pictures=[Picture(f"{ex}/per_class.png", "per-class accuracy and difference")]
                if "per_class.png" in have else []),
    ]
    for stem, title, n, text in (
            ("only_classical_right", "Classical right, deep wrong", counts["only_classical_right"], f"{c} right, {d} wrong"),
            ("only_deep_right", "Deep right, classical wrong", counts["only_deep_right"], f"{d} right, {c} wrong")):
        paragraphs = [f"{n} test image(s): {text}. Each tile: the image's position in the test split, its true "
                      f"class, each model's prediction and confidence (probability; 'score' for a decision "
                      f"function). All of them: {ex}/disagreements.csv."]
        sections.append(Section(title, paragraphs,
                                pictures=[Picture(f"{ex}/{stem}.png", text)] if f"{stem}.png" in have else []))
    sections.append(Section("Most confident mistakes", [
        f"{c}: {counts['classical_mistakes']} mistakes, {d}: {counts['deep_mistakes']}; both wrong on "
        f"{counts['both_wrong']} image(s). The ones each model was surest of:"],
        pictures=[Picture(f"{ex}/{stem}.png", f"{model}'s most confident mistakes")
                  for stem, model in (("mistakes_classical", c), ("mistakes_deep", d)) if f"{stem}.png" in have]))
    sections.append(Section("Confusion difference", [
        "Confusion counts of the deep model minus the classical one: red on the diagonal = deep gets more of that "
        "class right; red off it = deep makes that mistake more often."],
        pictures=[Picture(f"{ex}/confusion_difference.png", "confusion difference")]
        if "confusion_difference.png" in have else []))
    vis = f"{ex}/visualize"
    for name in drawn:
        stems = [Path(f).stem for f in visual_files if Path(f).parent.as_posix() == name]  # in visualize's order
        sections.append(Section(f"Step by step: test image {name}", [
            "What each approach computes from this image: the handcrafted features the classifiers get, and the "
            "CNNs' feature maps after each convolution and pooling layer (cvd visualize draws any image)."],
            pictures=[Picture(f"{vis}/{name}/{s}.png", VISUAL_CAPTIONS.get(s, s.replace("_", " ")),
                              width=256 if s == "image" else None, pixels=s == "image") for s in stems]))
    shared = sorted(f for f in visual_files if f.startswith(("lecture/", "cnn/")))
    sections.append(Section("The lecture's examples and the learnt filters", [
        "The worked convolution, padding, stride and pooling examples computed by features/conv.py, and the "
        "first convolution filters the CNNs learnt."],
        pictures=[Picture(f"{vis}/{f}", Path(f).stem.replace("_", " ")) for f in shared]))
    return page(f"classic-vs-deep: {c} vs {d}", verdict, sections,
                footer="Generated by `cvd explain` (DVC stage explain) from reports/summary.json, "
                       "reports/leaderboard.csv and predictions/.")


def _log_to_comparison(cfg: Config, split_sha256: str) -> str:
    """Log the page and its pictures to the newest FINISHED comparison run on this split; a
    one-line message either way, never an exception."""
    try:
        import mlflow

        from pipeline.tracking import tracking_uri

        uri = tracking_uri()
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
            return f"MLflow: no store at {uri}; the report was not logged"
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(cfg.experiment) is None:
            return f"MLflow: no experiment {cfg.experiment!r}; the report was not logged"
        runs = mlflow.search_runs(experiment_names=[cfg.experiment], output_format="list", max_results=1,
                                  filter_string=f"tags.approach = 'comparison' AND attributes.status = 'FINISHED' "
                                                f"AND tags.split_sha256 = '{split_sha256}'",
                                  order_by=["attributes.start_time DESC"])
        if not runs:
            return (f"MLflow: no FINISHED comparison run on split {split_sha256[:12]} in {cfg.experiment!r}; "
                    f"the report was not logged")
        run_id = runs[0].info.run_id
        client = mlflow.MlflowClient()
        client.log_artifact(run_id, str(INDEX), "report")
        client.log_artifacts(run_id, str(EXPLAIN_DIR), "report/explain")
        if (REPORTS_DIR / "plots").is_dir():
            client.log_artifacts(run_id, str(REPORTS_DIR / "plots"), "report/plots")
        return f"MLflow: logged the report to comparison run {run_id} (artifacts report/index.html)"
    except Exception as exc:  # logging is a convenience: never fail the stage for it
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        return f"MLflow: the report was not logged ({type(exc).__name__}: {first})"


def run(cfg: Config) -> dict:
    from pipeline import verdict

    summary = read_json(SUMMARY)
    names = best_pair(summary)
    classical, deep = aligned(results.read_predictions(names[0], "test"), results.read_predictions(names[1], "test"),
                              names)
    split = load_split(visualize.SPLIT_PATH)
    if split.sha256 != summary.get("split_sha256"):
        raise DataError(f"{SUMMARY} is for split {str(summary.get('split_sha256'))[:12]} but {visualize.SPLIT_PATH} "
                        f"is split {split.sha256[:12]}; run `dvc repro`")
    images = split.x["test"]
    if classical.index.max() >= len(images):
        raise DataError(f"predictions/{names[0]}/test.csv has index {int(classical.index.max())} beyond the "
                        f"{len(images)} test images of {visualize.SPLIT_PATH}; run `dvc repro`")
    leaderboard_rows = _read_leaderboard()
    level = verdict.Settings.from_config(cfg).level

    # everything is rendered in memory first; a failure writes nothing
    files, counts = analyse(classical, deep, images, split.class_names, names)
    only_c, only_d = disagreements(classical, deep)
    chosen = pictures_to_draw(only_c, only_d, len(images), VISUALIZED, cfg.seed)
    pictures = visualize.split_pictures(split, "test", chosen)
    drawings = visualize.render(pictures, visualize.prepare_tools(cfg, split, None, pictures))
    html_text = build_page(summary, verdict.verdict_line(summary, level), leaderboard_rows, list(files), counts,
                           [p.name for p in pictures], list(drawings), level,
                           [name for name in PLOTS if (REPORTS_DIR / "plots" / f"{name}.png").is_file()])

    outputs = {EXPLAIN_DIR / name: content for name, content in files.items()}
    outputs |= {EXPLAIN_DIR / "visualize" / rel: content for rel, content in drawings.items()}
    for dest, content in outputs.items():
        with atomic_path(dest) as tmp:
            tmp.write_bytes(content)
    write_json(EXPLAIN_DIR / "summary.json", {k: v for k, v in counts.items() if k != "per_class_rows"})
    missing = report_html.missing_images(html_text, REPORTS_DIR)
    if missing:  # a bug, not a user mistake: the page would show broken images
        raise RuntimeError(f"{INDEX} would link missing files: {', '.join(missing[:5])}")
    with atomic_path(INDEX) as tmp:
        tmp.write_text(html_text, encoding="utf-8")

    print(f"{names[0]} (classical) vs {names[1]} (deep) on {counts['n_test']:,} test images: "
          f"{counts['only_classical_right']} only classical right, {counts['only_deep_right']} only deep right, "
          f"{counts['both_wrong']} both wrong")
    print(f"wrote {len(outputs) + 1} files in {EXPLAIN_DIR}/ and {INDEX}")
    print(_log_to_comparison(cfg, split.sha256))
    return counts

"""MkDocs hooks: the results pages show the committed outputs of the last ``dvc repro``.

Nothing measured is copied into ``docs/`` by hand. At build time:

* ``on_files`` adds every committed picture under ``reports/`` (``compare``'s plots,
  ``explain``'s galleries and drawings) to the site, at the same path, so a page links
  ``reports/plots/accuracy_bars.png`` as it would link one of its own images;
* ``on_page_markdown`` replaces the ``<!-- results:... -->`` markers of a page with text and
  pictures generated from ``reports/summary.json``, ``reports/explain/summary.json`` and the
  pictures found.

A missing output fails the build: the site never shows a stale or invented result.
"""
from __future__ import annotations

import csv
import json
import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
REPORTS = "reports"

PLOT_CAPTIONS = {
    "accuracy_bars": "Test accuracy of every model with its 95 % interval",
    "accuracy_vs_params": "Test accuracy against parameter count",
    "confusion_best": "Confusion matrices of the best classical and the best deep model",
    "pairwise_pvalues": "McNemar's p between the top models",
    "training_curves": "The CNNs' training curves",
    "budget_curve": "Accuracy against training seconds: each CNN after every epoch, each classical model at its fit",
    "per_class": "Test accuracy per class, both chosen models, and the difference (deep − classical)",
    "only_classical_right": "Test images only the classical model gets right",
    "only_deep_right": "Test images only the deep model gets right",
    "mistakes_classical": "The classical model's most confident mistakes",
    "mistakes_deep": "The deep model's most confident mistakes",
    "confusion_difference": "Confusion counts, deep minus classical",
    "image": "The image as the models get it",
    "sobel": "Sobel: Gx, Gy and the gradient magnitude",
    "hog": "HOG: every cell's orientation histogram",
    "sift": "SIFT: the dense keypoint grid and the detector's own keypoints",
    "bovw": "The bag of visual words of the image and its four quadrants",
}


def on_files(files, config):
    for picture in sorted((ROOT / REPORTS).rglob("*.png")):
        src_uri = picture.relative_to(ROOT).as_posix()
        files.append(File.generated(config, src_uri, abs_src_path=str(picture)))
    return files


def on_page_markdown(markdown, page, config, files):
    here = posixpath.dirname(page.file.src_uri)

    def render(match: re.Match) -> str:
        name = match.group(1)
        if name not in RENDERERS:
            raise PluginError(f"{page.file.src_uri}: unknown marker <!-- results:{name} -->")
        return RENDERERS[name](lambda path: posixpath.relpath(path, here or "."))

    return re.sub(r"<!-- results:([a-z_]+) -->", render, markdown)


def read_json(relative: str) -> dict:
    path = ROOT / relative
    if not path.is_file():
        raise PluginError(f"{relative} not found: run `dvc repro` (or `make run`) before building the docs")
    return json.loads(path.read_text(encoding="utf-8"))


def pictures(folder: str) -> list[str]:
    found = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / folder).glob("*.png"))
    if not found:
        raise PluginError(f"no pictures in {folder}: run `dvc repro` (or `make run`) before building the docs")
    return found


def figure(link, path: str, caption: str | None = None) -> str:
    stem = Path(path).stem
    text = caption or PLOT_CAPTIONS.get(stem) or PLOT_CAPTIONS.get(stem.split("_")[-1], stem.replace("_", " "))
    return f"![{text}]({link(path)})\n/// caption\n{text} (`{path}`)\n///\n"


def percent(x: float) -> str:
    return f"{100 * x:.2f} %"


def points(x: float) -> str:
    return f"{100 * x:+.1f}".replace("-", "−")


def verdict(link) -> str:
    s = read_json(f"{REPORTS}/summary.json")
    v, c, d = s.get("verdict"), s.get("best_classical"), s.get("best_deep")
    if not (c and d and v):
        only = c or d
        approach = "classical" if c else "deep"
        return (f'!!! info "Verdict of the committed run (`reports/summary.json`)"\n\n'
                f"    Only {approach} models to compare: best `{only['model']}` (chosen on "
                f"{s['selection']}), test accuracy {percent(only['test_accuracy'])}.\n")
    if v["significant"] and s["winner"] in ("classical", "deep"):
        headline = f"**{s['winner']} wins** on `{s['dataset']}`"
        kind = "success"
    else:
        headline = f"**no significant difference** on `{s['dataset']}` at this test-set size"
        kind = "info"
    rows = [
        "| | model | test accuracy [95 % CI] | validation accuracy | parameters | fit s |",
        "|---|---|---|---:|---:|---:|",
    ]
    for approach, m in (("best classical", c), ("best deep", d)):
        rows.append(f"| {approach} | `{m['model']}` | {percent(m['test_accuracy'])} "
                    f"[{100 * m['test_accuracy_ci_low']:.1f}, {100 * m['test_accuracy_ci_high']:.1f}] | "
                    f"{percent(m['val_accuracy'])} | {m['param_count']:,} | {m['fit_seconds']:.3g} |")
    p = v["p_value"]
    detail = (f"Difference deep − classical: {points(v['difference'])} points, 95 % CI "
              f"[{points(v['ci_low'])}, {points(v['ci_high'])}]; McNemar p {'< 0.001' if p < 0.001 else f'= {p:.2g}'}; "
              f"{v['only_classical']} test images only the classical model gets right, "
              f"{v['only_deep']} only the deep one, of {v['n_test']:,}.")
    if not v["significant"] and v.get("images_needed"):
        detail += f" About {v['images_needed']:,} test images would be needed to detect this difference."
    body = "\n".join([headline, "", *rows, "", detail])
    indented = "\n".join(("    " + line) if line else "" for line in body.splitlines())
    return (f'!!! {kind} "Verdict of the committed run (`reports/summary.json`, '
            f'{s["n_models"]} models, chosen on {s["selection"]})"\n\n{indented}\n')


def leaderboard(link) -> str:
    """``reports/leaderboard.md`` as ``cvd compare`` wrote it, its headings one level down so that
    they sit under the page's own title."""
    path = ROOT / REPORTS / "leaderboard.md"
    if not path.is_file():
        raise PluginError(f"{REPORTS}/leaderboard.md not found: run `dvc repro` (or `make run`) before building the docs")
    text = path.read_text(encoding="utf-8")
    return re.sub(r"^(#+) ", r"#\1 ", text, flags=re.M)


def matrix(link) -> str:
    """The classical models' test accuracy as a feature x classifier table, from
    ``reports/leaderboard.csv``; the best of each column in bold."""
    path = ROOT / REPORTS / "leaderboard.csv"
    if not path.is_file():
        raise PluginError(f"{REPORTS}/leaderboard.csv not found: run `dvc repro` (or `make run`) before building the docs")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["approach"] == "classical"]
    features = list(dict.fromkeys(row["feature"] for row in rows))
    classifiers = list(dict.fromkeys(row["classifier"] for row in rows))
    accuracy = {(row["feature"], row["classifier"]): float(row["test_accuracy"]) for row in rows}
    best = {c: max(accuracy.get((f, c), 0.0) for f in features) for c in classifiers}

    def cell(f: str, c: str) -> str:
        if (f, c) not in accuracy:
            return ""
        text = percent(accuracy[f, c])
        return f"**{text}**" if accuracy[f, c] == best[c] else text

    lines = ["| feature | " + " | ".join(classifiers) + " |", "|---|" + "---:|" * len(classifiers)]
    lines += [f"| {f} | " + " | ".join(cell(f, c) for c in classifiers) + " |" for f in features]
    return "\n".join(lines) + "\n"


def plots(link) -> str:
    return "\n".join(figure(link, path) for path in pictures(f"{REPORTS}/plots"))


def explain(link) -> str:
    e = read_json(f"{REPORTS}/explain/summary.json")
    lines = [
        f"`{e['classical']}` (classical) against `{e['deep']}` (deep) on {e['n_test']:,} test images: "
        f"{e['only_classical_right']} only the classical model gets right, {e['only_deep_right']} only "
        f"the deep one, {e['both_wrong']} both miss.",
        "",
        "| class | test accuracy difference, deep − classical (points) |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {points(delta)} |" for name, delta in e["per_class_difference"].items()]
    lines.append("")
    lines += [figure(link, path) for path in pictures(f"{REPORTS}/explain")]
    return "\n".join(lines)


def drawings(link) -> str:
    drawn = sorted(p for p in (ROOT / REPORTS / "explain" / "visualize").glob("test-*") if p.is_dir())
    if not drawn:
        raise PluginError("no drawn test image in reports/explain/visualize: run `dvc repro` first")
    first = drawn[0].relative_to(ROOT).as_posix()
    order = ["image", "sobel", "hog", "sift", "bovw"]  # the lecture's order; the CNNs' maps after

    def rank(path: str) -> tuple[int, str]:
        stem = Path(path).stem
        return (order.index(stem) if stem in order else len(order), stem)

    return "\n".join(figure(link, path) for path in sorted(pictures(first), key=rank))


def lecture(link) -> str:
    shown = pictures(f"{REPORTS}/explain/visualize/lecture") + pictures(f"{REPORTS}/explain/visualize/cnn")
    return "\n".join(figure(link, path, Path(path).stem.replace("_", " ")) for path in shown)


RENDERERS = {"verdict": verdict, "leaderboard": leaderboard, "matrix": matrix, "plots": plots, "explain": explain, "drawings": drawings, "lecture": lecture}

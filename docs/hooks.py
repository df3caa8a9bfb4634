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
    "learning_curve": "Test accuracy against training-set size, both chosen models, with 95 % intervals",
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
        if name.startswith("measured_"):
            return measured_run(name.removeprefix("measured_"), lambda path: posixpath.relpath(path, here or "."))
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


# --- recorded large-data runs ---------------------------------------------------------------
# benchmarks/bench_documented.py --record docs/measured/<name>: one folder per documented command,
# run exactly as written on the real data (run.json says which, when, on how many CPUs)
MEASURED = "docs/measured"
README_START, README_END = "<!-- measured:start -->", "<!-- measured:end -->"


def measured_runs() -> dict[str, Path]:
    return {p.name: p for p in sorted((ROOT / MEASURED).glob("*")) if (p / "run.json").is_file()}


def _model_cell(m: dict) -> str:
    return (f"`{m['model']}` {percent(m['test_accuracy'])} "
            f"[{100 * m['test_accuracy_ci_low']:.1f}, {100 * m['test_accuracy_ci_high']:.1f}]")


def _verdict_cell(s: dict) -> str:
    v = s.get("verdict")
    if not v:
        return "one approach only"
    p = v["p_value"]
    p_text = "p < 0.001" if p < 0.001 else f"p = {p:.2g}"
    if not v["significant"]:
        return f"no significant difference ({points(v['difference'])} points, {p_text})"
    low, high = sorted(abs(100 * v[key]) for key in ("ci_low", "ci_high"))  # the winner's lead, either sign
    digits = 2 if low < 0.1 else 1  # a significant lead's interval never shows a bound of 0.0
    return (f"**{s['winner']}** by {abs(100 * v['difference']):.{digits}f} points "
            f"[{low:.{digits}f}, {high:.{digits}f}], {p_text}")


def _crossover_cell(curve: dict | None) -> str:
    if not curve:
        return "not run"
    c = curve["crossover"]
    sizes = ", ".join(f"{n:,}" for n in c["sizes"])
    if c["status"] == "crossover":
        low, high = c["bracket"]
        return (f"{c['winner']} significantly ahead from {c['size']:,} training images on: crossover between "
                f"{low:,} and {high:,} (sizes {sizes})")
    return f"none within {sizes} training images" + (f"; {c['winner']} ahead throughout" if c.get("winner") else "")


def _answer_row(name: str, summary: dict, curve: dict | None, run: dict | None, source_link: str) -> str:
    budget = (summary.get("verdict") or {}).get("budget", {})
    train = next((b["train_images"] for b in budget.values() if b.get("train_images")), None)
    time = (f"{run['wall_seconds'] / 60:.1f} min on {run['cpus']} CPUs ({run['date']}, `{run['commit']}`)"
            if run else "see Quick start")
    c, d = summary.get("best_classical"), summary.get("best_deep")
    return (f"| [{name}]({source_link}) | {'' if train is None else f'{train:,}'} | "
            f"{_model_cell(c) if c else '-'} | {_model_cell(d) if d else '-'} | {_verdict_cell(summary)} | "
            f"{_crossover_cell(curve)} | {time} |")


def answers_table(link, source_link=None) -> str:
    """The verdict on each data set: the committed default run (``reports/``) and every recorded
    documented command (``docs/measured/*``). ``source_link(path)`` turns a repository path into a
    link (the site links its pages, the README the files)."""
    source_link = source_link or (lambda path: link(path.removeprefix("docs/").split(":")[0]))
    curve_path = ROOT / REPORTS / "curve" / "summary.json"
    rows = ["| data | training images | best classical [95 % CI] | best deep [95 % CI] | verdict on test "
            "| learning curve crossover | end to end |",
            "|---|---:|---|---|---|---|---|",
            _answer_row(f"{read_json(f'{REPORTS}/summary.json')['dataset']} (`make run`)",
                        read_json(f"{REPORTS}/summary.json"),
                        json.loads(curve_path.read_text()) if curve_path.is_file() else None, None,
                        source_link("docs/results.md"))]
    for name, folder in measured_runs().items():
        run = json.loads((folder / "run.json").read_text())
        curve = json.loads((folder / "curve.json").read_text()) if (folder / "curve.json").is_file() else None
        rows.append(_answer_row(name.replace("_", "-"), json.loads((folder / "summary.json").read_text()), curve, run,
                                source_link(run["source"])))
    return "\n".join(rows) + "\n"


def readme_table() -> str:
    """The README's block between its measured markers: the answers table linking the files."""
    return answers_table(lambda path: path, source_link=lambda path: path.split(":")[0])


def measured_run(name: str, link) -> str:
    """One recorded run: the command, where and when, the time by stage group, the top models,
    the verdict, the learning curve and the budget curve."""
    folder = measured_runs().get(name)
    if folder is None:
        raise PluginError(f"{MEASURED}/{name}/run.json not found: record it with benchmarks/bench_documented.py")
    run = json.loads((folder / "run.json").read_text())
    rel = folder.relative_to(ROOT / "docs").as_posix()  # the site serves docs/ at its root
    # no line number: the record stays the command's as long as its text is unchanged (a test checks)
    lines = [f"Recorded by `python benchmarks/bench_documented.py {run['source'].split(':')[0]}:LINE --data DIR "
             f"--record {MEASURED}/{name}` (LINE: the command's first line) on {run['date']} (commit "
             f"`{run['commit']}`, {run['cpus']} CPUs): the command above exactly as written, `DIR` the real data, "
             f"in a fresh copy of the repository (nothing reused). End to end "
             f"**{run['wall_seconds']:,.0f} s ({run['wall_seconds'] / 60:.1f} min)**; the budget is "
             f"{run['budget_seconds'] / 60:.0f} min.", "",
             "| stage group | stages | wall s | model fit s |", "|---|---:|---:|---:|"]
    for g in run["stage_groups"]:
        fit = "" if g["fit_seconds"] is None else f"{g['fit_seconds']:,.1f}"
        lines.append(f"| {g['group']} | {g['stages']} | {g['wall_seconds']:,.1f} | {fit} |")
    with open(folder / "leaderboard.csv", newline="", encoding="utf-8") as f:
        board = list(csv.DictReader(f))
    lines += ["", "| rank | model | test accuracy [95 % CI] | validation accuracy | fit s |", "|---:|---|---|---:|---:|"]
    lines += [f"| {r['rank']} | `{r['model']}` | {percent(float(r['test_accuracy']))} "
              f"[{100 * float(r['test_accuracy_ci_low']):.1f}, {100 * float(r['test_accuracy_ci_high']):.1f}] | "
              f"{percent(float(r['val_accuracy']))} | {float(r['fit_seconds']):,.1f} |" for r in board]
    summary = json.loads((folder / "summary.json").read_text())
    curve = json.loads((folder / "curve.json").read_text()) if (folder / "curve.json").is_file() else None
    lines += ["", f"Verdict: {_verdict_cell(summary)} (chosen on {summary['selection']}).", ""]
    if curve:
        lines += [f"Learning curve: {curve['crossover']['text']}.", ""]
    for png in ("learning_curve", "budget_curve"):
        if (folder / f"{png}.png").is_file():
            lines.append(figure(link, f"{rel}/{png}.png", PLOT_CAPTIONS.get(png)))
    return "\n".join(lines) + "\n"


RENDERERS = {"answers": answers_table, "verdict": verdict, "leaderboard": leaderboard, "matrix": matrix, "plots": plots, "explain": explain, "drawings": drawings, "lecture": lecture}


def update_readme(readme: Path = ROOT / "README.md") -> bool:
    """Rewrite the README's answers table from the recorded files; True if it changed."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    new = text[:start] + "\n" + readme_table() + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # python docs/hooks.py: regenerate the README's answers table
    print("README.md updated" if update_readme() else "README.md already up to date")

"""``reports/index.html``: one static page -- verdict, leaderboard, comparison plots,
disagreement galleries, per-class deltas and the drawings of a few test images.

Plain HTML and CSS, no script, no server: images are PNG files beside the page, linked by
relative paths, so the folder opens from the file system (and from an MLflow artifact
view). Every text is escaped with :func:`html.escape`. Pure functions: the page is a string
built from :class:`Section` values; :func:`missing_images` lists the links that do not
resolve, and :func:`explain <pipeline.explain.run>` refuses to write a page with any.
:func:`build_page` lays out ``explain``'s page from the files it wrote.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline import layout

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
.verdict { background: #f4f6fa; border-left: 4px solid #4c72b0; padding: .8em 1em; font-size: 1.05em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; }
th { background: #eee; } td.text, th.text { text-align: left; }
tr.classical td.text:first-child { border-left: 4px solid #4c72b0; } tr.deep td.text:first-child { border-left: 4px solid #dd8452; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; } img.pixels { image-rendering: pixelated; }
figcaption { font-size: .85em; color: #555; max-width: 100%; }
nav a { margin-right: 1em; } .note { color: #666; font-size: .9em; }
"""


@dataclass
class Picture:
    """An image file beside the page: ``src`` relative to the page, a caption, a display width."""

    src: str
    caption: str = ""
    width: int | None = None
    pixels: bool = False  # an enlarged image: keep its pixels sharp when the browser scales it


@dataclass
class Table:
    """A table: header names and rows of cell texts; ``row_classes`` style whole rows."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    row_classes: Sequence[str] = ()
    text_columns: Sequence[int] = (0,)


@dataclass
class Section:
    """One part of the page: a title (also its anchor), paragraphs, tables, pictures."""

    title: str
    paragraphs: Sequence[str] = ()
    tables: Sequence[Table] = ()
    pictures: Sequence[Picture] = ()
    anchor: str = field(default="")

    def __post_init__(self) -> None:
        self.anchor = self.anchor or re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def _table(table: Table) -> str:
    e = html.escape
    head = "".join(f'<th class="{"text" if i in table.text_columns else ""}">{e(h)}</th>'
                   for i, h in enumerate(table.header))
    body = []
    for r, row in enumerate(table.rows):
        cls = table.row_classes[r] if r < len(table.row_classes) else ""
        cells = "".join(f'<td class="{"text" if i in table.text_columns else ""}">{e(str(c))}</td>'
                        for i, c in enumerate(row))
        body.append(f'<tr class="{e(cls)}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _picture(p: Picture) -> str:
    e = html.escape
    width = f' width="{int(p.width)}"' if p.width else ""
    cls = ' class="pixels"' if p.pixels else ""
    return (f'<figure><a href="{e(p.src)}"><img src="{e(p.src)}"{cls} alt="{e(p.caption or p.src)}"{width}></a>'
            f"<figcaption>{e(p.caption)}</figcaption></figure>")


def page(title: str, verdict: str, sections: Sequence[Section], footer: str = "") -> str:
    """The whole page as one HTML string (UTF-8, no script)."""
    e = html.escape
    nav = " ".join(f'<a href="#{e(s.anchor)}">{e(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{e(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f"<h1>{e(title)}</h1>", f'<p class="verdict">{e(verdict)}</p>', f"<nav>{nav}</nav>",
    ]
    for s in sections:
        parts.append(f'<h2 id="{e(s.anchor)}">{e(s.title)}</h2>')
        parts += [f"<p>{e(text)}</p>" for text in s.paragraphs]
        parts += [_table(t) for t in s.tables]
        if s.pictures:
            parts.append("<div>" + "".join(_picture(p) for p in s.pictures) + "</div>")
    if footer:
        parts.append(f'<p class="note">{e(footer)}</p>')
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


IMG_SRC = re.compile(r'<img [^>]*src="([^"]+)"')


def image_sources(text: str) -> list[str]:
    """The ``src`` of every ``<img>`` of a page, unescaped."""
    return [html.unescape(src) for src in IMG_SRC.findall(text)]


def missing_images(text: str, folder: Path) -> list[str]:
    """The image links of a page in ``folder`` that do not resolve to a file there."""
    return [src for src in image_sources(text) if not (folder / src).is_file()]


def leaderboard_table(rows: Sequence[Mapping[str, str]], best: Sequence[str], level: str = "95 %") -> Table:
    """The leaderboard CSV's main columns; the chosen best model of each approach is starred."""
    def pct(value: str) -> str:
        return f"{100 * float(value):.2f}" if value not in ("", None) else "-"

    def interval(row: Mapping[str, str]) -> str:
        low, high = row.get("test_accuracy_ci_low", ""), row.get("test_accuracy_ci_high", "")
        return f"[{pct(low)}, {pct(high)}]" if low and high else "-"

    header = ["#", "approach", "model", "test acc %", f"{level} CI", "≈ top", "val acc %", "params", "fit s"]
    table_rows = []
    for row in rows:
        star = " ★" if row["model"] in best else ""
        table_rows.append([row.get("rank", ""), row.get("approach", ""), row["model"] + star, pct(row["test_accuracy"]),
                           interval(row), row.get("near_top", ""), pct(row.get("val_accuracy", "")),
                           f"{int(float(row['param_count'])):,}" if row.get("param_count") else "-",
                           row.get("fit_seconds", "") or "-"])
    return Table(header, table_rows, [r.get("approach", "") for r in rows], text_columns=(1, 2, 5))


VISUAL_CAPTIONS = {"image": "the test image"}  # the other drawings are titled by their own figures
BUDGET_PLOT = "budget_curve"


def budget_table(given: Mapping[str, Any]) -> Table:
    """The two compared models' budgets (summary.json's ``verdict.budget``)."""
    c, d = given["classical"], given["deep"]

    def number(value: Any, digits: str = ",") -> str:
        return "-" if value is None else f"{value:{digits}}"

    return Table(["approach", "model", "training images", "epochs run (kept)", "fit s"], [
        ["deep", d["model"], number(d.get("train_images")),
         f"{number(d.get('epochs_run'))} ({number(d.get('best_epoch'))})", number(d.get("fit_seconds"), ".4g")],
        ["classical", c["model"], number(c.get("train_images")) + (" (train + validation)" if c.get("search") else ""),
         "grid search and refit" if c.get("search") else "one fit", number(c.get("fit_seconds"), ".4g")],
    ], ["deep", "classical"], text_columns=(0, 1, 3))


def budget_section(summary: Mapping[str, Any], plots: Sequence[str]) -> list[Section]:
    """What each compared side was given and the budget curve: one section, or none without either."""
    given = (summary.get("verdict") or {}).get("budget")
    curve = layout.plot_path(BUDGET_PLOT).relative_to(layout.REPORTS_DIR).as_posix()
    pictures = [Picture(curve, "accuracy vs. training seconds", width=760)] if BUDGET_PLOT in plots else []
    if not (given or pictures):
        return []
    return [Section("Budget", [
        "What each side of the verdict was given: a win is read with its budget. The curve puts every model on the "
        "same axis of training seconds (log scale): each CNN after every epoch of its one run (cumulative epoch "
        "seconds; the test accuracy after each epoch is shown for this plot only -- the kept epoch was chosen on "
        "validation), each classical model at its fit seconds (feature extraction not counted). Bands and bars: "
        "Wilson intervals of the test accuracy. For a given budget, read which approach is higher at that x."],
        tables=[budget_table(given)] if given else [], pictures=pictures)]


def build_page(summary: Mapping[str, Any], verdict: str, leaderboard: Sequence[Mapping[str, str]],
               explain_files: Sequence[str], counts: Mapping[str, Any], drawn: Sequence[str],
               visual_files: Sequence[str], level: str, plots: Sequence[str] = (),
               extra: Sequence[Section] = ()) -> str:
    """reports/index.html from what exists: ``explain_files`` (names in reports/explain/),
    ``visual_files`` (paths under reports/explain/visualize/), ``drawn`` (image folder names),
    ``plots`` (compare's plots in reports/plots/, by name); ``extra`` sections follow the leaderboard."""
    c, d = counts["classical"], counts["deep"]
    have = set(explain_files)
    ex = layout.EXPLAIN_DIR.relative_to(layout.REPORTS_DIR).as_posix()
    plot_pictures = [Picture(layout.plot_path(name).relative_to(layout.REPORTS_DIR).as_posix(), name.replace("_", " "),
                             width=560) for name in plots if name != BUDGET_PLOT]
    sections = [
        Section("Leaderboard", [f"Ranked by test accuracy; ★ = the best model of each approach, chosen on validation "
                                f"accuracy, which the verdict compares. {summary.get('dataset', '')}, "
                                f"{counts['n_test']:,} test images."],
                tables=[leaderboard_table(leaderboard, [c, d], level)], pictures=plot_pictures),
        *budget_section(summary, plots),
        *extra,
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

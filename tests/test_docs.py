"""The documentation site builds with `mkdocs build --strict` (a broken link, anchor or missing page
fails), its results pages show the committed outputs of `reports/` (so a re-recorded run cannot
leave stale docs), and the README stays a five-minute read."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

import pytest

from helpers import REPO_ROOT

README = REPO_ROOT / "README.md"
REPORTS = REPO_ROOT / "reports"


def build(config_dir: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=config_dir, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = build(REPO_ROOT, out)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


class Page(HTMLParser):
    """The text, table rows (cell texts) and image sources of one built page."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[str] = []
        self.chunks: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        self.chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.chunks).split())


def page(site: Path, name: str) -> Page:
    return Page((site / name / "index.html").read_text(encoding="utf-8"))


def markdown_rows(text: str) -> list[list[str]]:
    """The body rows of the markdown tables in ``text``, as cell texts without code marks."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[\s:|-]+\|", line.strip()):
            rows.append([" ".join(cell.replace("`", "").split()) for cell in line.strip().strip("|").split("|")])
    return rows


def test_results_page_shows_the_committed_leaderboard(site):
    shown = page(site, "results")
    leaderboard = (REPORTS / "leaderboard.md").read_text(encoding="utf-8")
    rows = markdown_rows(leaderboard)
    with open(REPORTS / "leaderboard.csv", newline="", encoding="utf-8") as f:
        models = [row["model"] for row in csv.DictReader(f)]
    assert len(rows) == len(models) + 1  # the header and one row per model
    for row in rows:
        assert row in shown.rows, f"leaderboard row not on the results page: {row}"
    verdict_sentence = [p for p in leaderboard.strip().split("\n\n") if p.strip()][-1]
    assert " ".join(verdict_sentence.split()) in shown.text


def test_results_page_matrix_is_the_classical_rows_of_the_leaderboard(site):
    shown = page(site, "results")
    with open(REPORTS / "leaderboard.csv", newline="", encoding="utf-8") as f:
        classical = [row for row in csv.DictReader(f) if row["approach"] == "classical"]
    header = next(r for r in shown.rows if r and r[0] == "feature" and "classifier" not in r)
    for row in classical:
        cells = next(r for r in shown.rows if r and r[0] == row["feature"] and len(r) == len(header))
        assert cells[header.index(row["classifier"])] == f"{100 * float(row['test_accuracy']):.2f} %"


def test_results_page_shows_the_verdict_of_summary_json(site):
    shown = page(site, "results")
    summary = json.loads((REPORTS / "summary.json").read_text(encoding="utf-8"))
    verdict = summary["verdict"]
    for approach, key in (("best classical", "best_classical"), ("best deep", "best_deep")):
        model = summary[key]
        row = next(r for r in shown.rows if r and r[0] == approach)
        assert row[1] == model["model"]
        assert row[2].startswith(f"{100 * model['test_accuracy']:.2f} %")
        assert row[4] == f"{model['param_count']:,}"
    headline = f"{summary['winner']} wins" if verdict["significant"] else "no significant difference"
    assert headline in shown.text
    assert (f"{verdict['only_classical']} test images only the classical model gets right, "
            f"{verdict['only_deep']} only the deep one, of {verdict['n_test']:,}") in shown.text


def shown_pictures(site: Path, name: str) -> dict[str, Path]:
    """The committed pictures a built page shows: repository path -> file in the site."""
    found = {}
    for src in page(site, name).images:
        path = PurePosixPath(name) / src
        parts: list[str] = []
        for part in path.parts:
            if part == "..":
                parts.pop()
            elif part != ".":
                parts.append(part)
        if parts[0] == "reports":
            found["/".join(parts)] = site.joinpath(*parts)
    return found


@pytest.mark.parametrize("name, folder", [("results", "reports/plots"), ("results", "reports/explain"),
                                          ("explain", "reports/explain")])
def test_pages_show_every_committed_picture(site, name, folder):
    shown = shown_pictures(site, name)
    committed = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / folder).glob("*.png"))
    assert committed
    for picture in committed:
        assert picture in shown, f"{picture} is not on the {name} page"
        assert shown[picture].read_bytes() == (REPO_ROOT / picture).read_bytes()


def test_a_broken_link_fails_the_build(tmp_path):
    for part in ("mkdocs.yml", "docs", "reports"):
        source = REPO_ROOT / part
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / part)
    with open(tmp_path / "docs" / "index.md", "a", encoding="utf-8") as f:
        f.write("\nSee [the missing page](missing.md).\n")
    built = build(tmp_path, tmp_path / "site")
    assert built.returncode != 0
    assert "missing.md" in built.stdout + built.stderr


def test_readme_is_a_five_minute_read_that_starts_with_make_run_and_make_test():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1).split()
    assert first_block[:4] == ["make", "run", "make", "test"]


def test_readme_links_point_to_existing_pages():
    text = README.read_text(encoding="utf-8")
    links = [target for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text) if "://" not in target]
    assert links
    for target in links:
        assert (REPO_ROOT / target).is_file(), f"README links to a missing file: {target}"


def test_extending_page_components_table_is_the_registries():
    from click.testing import CliRunner

    from pipeline.cli import cli

    printed = CliRunner().invoke(cli, ["components", "--markdown"])
    assert printed.exit_code == 0, printed.output
    text = (REPO_ROOT / "docs" / "extending.md").read_text(encoding="utf-8")
    shown = text.split("<!-- components:start -->\n", 1)[1].split("<!-- components:end -->", 1)[0]
    assert shown == printed.output, "docs/extending.md's component table is stale: paste `cvd components --markdown`"


def docs_hooks():
    """docs/hooks.py (the MkDocs hooks, not a package module), freshly loaded."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", REPO_ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks


def test_readme_answers_table_is_generated_from_the_recorded_runs(tmp_path):
    """README's "What it found" table is what docs/hooks.py generates from reports/ and
    docs/measured/*: re-recording a run without regenerating it fails here."""
    hooks = docs_hooks()
    text = README.read_text(encoding="utf-8")
    block = text[text.index(hooks.README_START) + len(hooks.README_START):text.index(hooks.README_END)]
    assert block == "\n" + hooks.readme_table(), "README.md's answers table is stale: run `python docs/hooks.py`"
    summary = json.loads((REPORTS / "summary.json").read_text())
    assert f"`{summary['best_classical']['model']}`" in block.splitlines()[3]  # the first row: the committed run
    assert len(block.strip().splitlines()) == 3 + len(hooks.measured_runs())  # header, rule, make run, one per record
    copy = tmp_path / "README.md"
    copy.write_text(text.replace(block, "\n| stale |\n"), encoding="utf-8")
    assert hooks.update_readme(copy) and not hooks.update_readme(copy)
    assert copy.read_text(encoding="utf-8") == text


def test_a_recorded_run_becomes_a_row_and_a_section(tmp_path, monkeypatch):
    """A folder written by benchmarks/bench_documented.py --record: its row in the answers table
    (verdict, crossover, time from run.json) and its section (stage times, leaderboard, plots)."""
    hooks = docs_hooks()
    shutil.copytree(REPORTS, tmp_path / "reports", ignore=shutil.ignore_patterns("explain"))
    record = tmp_path / "docs/measured/demo_set"
    record.mkdir(parents=True)
    for src, name in (("summary.json", "summary.json"), ("leaderboard.csv", "leaderboard.csv"),
                      ("curve/summary.json", "curve.json"), ("curve/learning_curve.png", "learning_curve.png")):
        shutil.copy(REPORTS / src, record / name)
    run = {"source": "docs/large-data.md:23", "command": "dvc exp run -S data.path=DIR", "commit": "abc1234",
           "date": "2026-12-05", "cpus": 2, "wall_seconds": 1234.5, "budget_seconds": 1800.0,
           "stage_groups": [{"group": "prepare", "stages": 1, "wall_seconds": 30.0, "fit_seconds": None},
                            {"group": "train_cnn", "stages": 1, "wall_seconds": 900.0, "fit_seconds": 850.5}]}
    (record / "run.json").write_text(json.dumps(run))
    monkeypatch.setattr(hooks, "ROOT", tmp_path)

    rows = hooks.readme_table().strip().splitlines()
    assert len(rows) == 4 and rows[3].startswith("| [demo-set](docs/large-data.md) |")
    summary = json.loads((REPORTS / "summary.json").read_text())
    assert f"`{summary['best_deep']['model']}`" in rows[3] and "20.6 min on 2 CPUs (2026-12-05, `abc1234`)" in rows[3]
    section = hooks.measured_run("demo_set", lambda path: path)
    assert "| train_cnn | 1 | 900.0 | 850.5 |" in section and "**1,234 s (20.6 min)**" in section
    board = list(csv.DictReader((REPORTS / "leaderboard.csv").open()))
    assert all(f"`{row['model']}`" in section for row in board)
    assert "(measured/demo_set/learning_curve.png)" in section  # served from docs/ at the site's root
    with pytest.raises(Exception, match="measured/nothing/run.json not found"):
        hooks.measured_run("nothing", lambda path: path)


@pytest.mark.parametrize("verdict, expected", [
    # difference = deep - classical: a deep lead is positive, a classical one negative
    ({"winner": "deep", "difference": 0.0021, "ci_low": 0.0004, "ci_high": 0.0038, "p_value": 0.0186},
     "**deep** by 0.21 points [0.04, 0.38], p = 0.019"),
    ({"winner": "classical", "difference": -0.013, "ci_low": -0.018, "ci_high": -0.008, "p_value": 0.0001},
     "**classical** by 1.3 points [0.8, 1.8], p < 0.001"),
])
def test_the_answers_table_gives_the_winners_lead_with_its_interval_low_to_high(verdict, expected):
    hooks = docs_hooks()
    assert hooks._verdict_cell({"winner": verdict["winner"], "verdict": verdict | {"significant": True}}) == expected

"""Every documented command runs as written (issue 20, item 7).

Each line starting with ``dvc exp run``, ``cvd`` or ``make`` in a ```bash block of README.md or
docs/**/*.md (``\\`` continuations joined, ``# comments`` dropped) is executed through DVC / the
CLI itself, in its own copy of the finished small run (conftest ``small_run``), with only a
data path and a size limit substituted:

* ``dvc exp run``: ``-S data.path=DIR`` gets the real data set of its ``data.dataset`` from
  ../shared/datasets (else a generated one of that kind), ``-S data.test_path=DIR2`` the folder
  data set's test folder (more images of the same classes), and then the size limit is appended
  (``SIZE_LIMIT`` and every ``epochs`` key under ``cnn`` set to 1); DVC lets a later ``-S`` of
  the same key win. Commands without a data path run exactly as written on the small run's
  data. The keys each command sets must be in the applied params.yaml, and a substituted data
  set must be the one ``prepare`` recorded.
* ``cvd``: the input files it names (images, ``photos/``, the placeholder folder ``DIR``) are made in the copy; ``--path`` of
  ``cvd prepare`` gets the data set as above. ``cvd ui`` (a server) must print its link, answer
  on it, and stop with exit 0 on Ctrl-C.
* ``make run`` runs as ``make run VENV=<view of this interpreter's venv>``: the finished run
  makes its ``dvc repro`` a no-op, and it must still print the leaderboard. Other ``make``
  targets are in ``NOT_RUN`` with the reason.

The stages a ``dvc exp run`` starts, and the ``cvd`` commands other than servers, run their ``cvd``
in forks of the session's warm interpreter (tests/warm_cvd.py: the same ``pipeline.cli.main`` of
the copy's code, without seconds of library imports per command). Each command's wall time is
printed (``-s`` shows it), never asserted.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from filelock import FileLock

from helpers import REPO_ROOT, SHARED_DATASETS, make_folder, make_idx_dir, session_dir, venv_env, warm_env

RUN_PREFIXES = ("dvc exp run", "cvd", "make")

# Documented make targets this module does not run, and why. Nothing but make targets belongs here.
NOT_RUN = {
    "make test": "the suite itself (this module is part of it)",
    "make test-fast": "the suite itself, minus the slow tests",
    "make bench": "the benchmarks: full-size runs of minutes to hours, run by hand",
    "make docs": "CI builds the site (mkdocs build --strict)",
}

# Appended to a `dvc exp run` whose data path is substituted: 40 images per class keep more than
# the 200 training images the documented `classical.pca=200` needs (after the val/test split).
# The k-means extractor's training patches are a sample size too (the CIFAR-10 command's 1,600 centroids).
SIZE_LIMIT = {"data.limit_per_class": "40", "evaluation.bootstrap_resamples": "200", "cnn.epochs": "1",
              "features.kmeans.n_patches": "5000"}

# data.dataset -> the folder under ../shared/datasets holding the real files
SHARED = {"mnist": "mnist", "fashion_mnist": "fashion-mnist", "folder": "cifar10-jpg"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
OUTPUT_OPTIONS = ("--out", "-o")
SERVERS = ("cvd ui",)


@dataclass(frozen=True)
class Documented:
    source: str  # "README.md:730"
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


# --- extraction -------------------------------------------------------------------------------

def bash_lines(markdown: str):
    """(line number, line) of every line inside a ```bash fence (indented fences too)."""
    inside = False
    for number, line in enumerate(markdown.splitlines(), 1):
        fence = line.strip()
        if not inside:
            inside = re.match(r"```bash\b", fence) is not None
        elif fence.startswith("```"):
            inside = False
        else:
            yield number, line


def extract(markdown: str, name: str) -> list[Documented]:
    """The documented commands of one Markdown file, continuations joined, comments dropped."""
    found, pending, start = [], "", 0
    for number, line in bash_lines(markdown):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        if words and " ".join(words).startswith(RUN_PREFIXES):
            found.append(Documented(f"{name}:{start}", tuple(words)))
    return found


def doc_files() -> list[Path]:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("**/*.md"))]


def documented_commands() -> list[Documented]:
    return [c for path in doc_files()
            for c in extract(path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))]


def to_run() -> list[Documented]:
    """The commands to execute, each once (the first place it is documented names it)."""
    unique = {}
    for command in documented_commands():
        if command.text not in NOT_RUN:
            unique.setdefault(command.text, command)
    return list(unique.values())


# --- substitution -----------------------------------------------------------------------------

def option_value(argv, option: str) -> str | None:
    return next((argv[i + 1] for i, word in enumerate(argv[:-1]) if word == option), None)


def overrides(argv) -> dict[str, str]:
    """The ``-S key=value`` pairs, the last of a key winning (as DVC applies them)."""
    return dict(argv[i + 1].split("=", 1) for i, word in enumerate(argv[:-1]) if word == "-S")


FOLDER_PER_CLASS = 60  # CIFAR-10 images per class taken from the archive for the folder data set
FOLDER_TEST_PER_CLASS = 20  # the next ones of each class: its test folder (data.test_path=DIR2)


def dataset_dir(kind: str) -> Path:
    """The real data set of this kind when ../shared/datasets has it, else a small generated one;
    made once per session, for all its processes (the first one makes it, under a file lock)."""
    home = session_dir() / "datasets" / kind
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(home.with_suffix(".lock")):
        made = home / "made"
        if not made.exists():
            made.write_text(str(_make_dataset(kind, home)))
        return Path(made.read_text())


def folder_for_test_path(data: Path) -> Path:
    """The test folder (``data.test_path``) made beside the folder data set ``data``."""
    return data.parent / "test"


def _make_dataset(kind: str, scratch: Path) -> Path:
    shared = SHARED_DATASETS / SHARED.get(kind, kind)
    if kind == "folder":  # train/ and its test folder test/ (the next images of each class)
        archive = shared / "train.tar.xz"
        if archive.exists():  # the first FOLDER_PER_CLASS JPEGs of each class folder, as they are
            taken: dict[str, int] = {}
            with tarfile.open(archive, "r|xz") as tar:
                for member in tar:
                    parts = Path(member.name).parts
                    if not member.isfile() or len(parts) != 3:
                        continue
                    n = taken[parts[1]] = taken.get(parts[1], 0) + 1
                    if n <= FOLDER_PER_CLASS:
                        tar.extract(member, scratch / "cifar10", filter="data")
                    elif n <= FOLDER_PER_CLASS + FOLDER_TEST_PER_CLASS:
                        target = folder_for_test_path(scratch / "cifar10" / "train") / parts[1] / parts[2]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(tar.extractfile(member).read())
            return scratch / "cifar10" / "train"
        classes = [f"c{i}" for i in range(10)]
        data = make_folder(scratch / "folder" / "train", classes=classes, per_class=40)
        make_folder(folder_for_test_path(data), classes=classes, per_class=10, size=(24, 20))  # other random images
        return data
    if (shared / "train-images-idx3-ubyte.gz").exists():
        return shared
    return make_idx_dir(scratch / kind, n_train=400, n_test=100)


def epoch_keys(params: dict) -> list[str]:
    """Every ``epochs`` key under ``cnn`` (``cnn.epochs``, ``cnn.<arch>.train.epochs``, a number or
    a number per kind of data, which the limit's plain number replaces)."""
    def walk(node, prefix):
        for key, value in node.items():
            if key == "epochs":
                yield f"{prefix}{key}"
            elif isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}.")
    return list(walk(params["cnn"], "cnn."))


def substituted_exp_run(argv, repo: Path) -> tuple[list[str], Path | None]:
    """The command with ``data.path`` pointing at a real (or generated) data set and the size
    limit appended; unchanged when it names no data path."""
    given = overrides(argv)
    if "data.path" not in given:
        return list(argv), None
    params = yaml.safe_load((repo / "params.yaml").read_text())
    data = dataset_dir(given.get("data.dataset") or params["data"]["dataset"])
    paths = {"data.path": data, "data.test_path": folder_for_test_path(data)}
    out = [next((f"{key}={path}" for key, path in paths.items() if word.startswith(f"{key}=")), word)
           for word in argv]
    limit = SIZE_LIMIT | {key: "1" for key in epoch_keys(params)}
    for key, value in limit.items():
        out += ["-S", f"{key}={value}"]
    return out, data


def write_image(path: Path) -> None:
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(len(path.name)).integers(0, 256, (28, 28), dtype=np.uint8)
    assert cv2.imwrite(str(path), image), path


def make_inputs(argv, repo: Path) -> list[str]:
    """Make the images and folders a ``cvd`` command reads; ``--path`` gets a data set."""
    out = list(argv)
    for i, word in enumerate(argv):
        previous = argv[i - 1]
        if word.startswith("-") or previous in OUTPUT_OPTIONS:
            continue
        if previous == "--path":
            out[i] = str(dataset_dir(option_value(argv, "--dataset") or "folder"))
        elif word.lower().endswith(IMAGE_SUFFIXES):
            write_image(repo / word)
        elif word.endswith("/") or word == "DIR":  # a folder of the user's images
            for name in ("a.png", "b.jpg", "c.png"):
                write_image(repo / word / name)
    return out


# --- running ----------------------------------------------------------------------------------

def run(argv, repo: Path, label: str, timeout: float = 1800, warm: bool = False) -> subprocess.CompletedProcess:
    """``argv`` in ``repo``; ``warm``: the stages DVC starts run in forks of the warm interpreter
    (:func:`helpers.warm_env`)."""
    start = time.perf_counter()
    env = (warm_env if warm else venv_env)({"PYTHONPATH": str(repo)})
    out = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"\n[{time.perf_counter() - start:7.1f} s] {label}\n    ran: {shlex.join(argv)}")
    assert out.returncode == 0, f"{label} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def lookup(params: dict, dotted: str):
    node = params
    for part in dotted.split("."):
        node = node[part]
    return node


def recorded_values(lock: dict, stages: list[str], key: str) -> list:
    """The value of ``key`` in dvc.lock's params of each of these stages that depends on it (a
    stage records the sections or keys its dvc.yaml lists, e.g. ``data`` or ``features.hog``)."""
    values = []
    for stage in (lock["stages"][name] for name in stages):
        for listed, value in stage.get("params", {}).get("params.yaml", {}).items():
            if key == listed:
                values.append(value)
            elif key.startswith(listed + "."):
                values.append(lookup(value, key.removeprefix(listed + ".")))
    return values


def check_exp_run(argv, repo: Path, data: Path | None) -> None:
    """Each key the command sets is in the applied params.yaml and in dvc.lock's params of every
    stage that depends on it; a substituted data set is the one prepare split (its manifest)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    # the pipeline's stages now (dvc.lock keeps the entries of stages a smaller run left out)
    stages = run(["dvc", "stage", "list", "--name-only"], repo, "(check) dvc stage list").stdout.split()
    for key, value in overrides(argv).items():
        expected = yaml.safe_load(value)
        assert lookup(params, key) == expected, key
        assert all(used == expected for used in recorded_values(lock, stages, key)), key
    if data is not None:
        assert recorded_values(lock, stages, "data.path") == [str(data)]
        manifest = json.loads((repo / "data/prepared/manifest.json").read_text())
        assert manifest["dataset"] == params["data"]["dataset"]
        assert manifest["test_path"] == overrides(argv).get("data.test_path")


def run_server(argv, repo: Path, label: str) -> None:
    """Start it, open the link it prints, Ctrl-C it: it must answer and then exit 0."""
    start = time.perf_counter()
    server = subprocess.Popen(argv, cwd=repo, env=venv_env({"PYTHONPATH": str(repo)}), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        link = None
        while link is None:
            line = server.stdout.readline()
            assert line, f"{label} ended before printing a link: {server.stderr.read()}"
            link = next(iter(re.findall(r"http://\S+", line)), None)
        with urllib.request.urlopen(link, timeout=60) as response:
            assert response.status == 200
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
        assert server.returncode == 0, err
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    print(f"\n[{time.perf_counter() - start:7.1f} s] {label}\n    ran: {shlex.join(argv)} (until its link answered)")


def venv_view(scratch: Path) -> Path:
    """A VENV folder for make: this interpreter's bin/ and a current install stamp, so that
    `make run` installs nothing (and never into the suite's own environment)."""
    view = scratch / "venv"
    view.mkdir()
    (view / "bin").symlink_to(Path(sys.executable).parent)
    (view / ".installed").touch()
    return view


def copy_run(finished: Path, dest: Path) -> Path:
    """A copy of a finished run whose MLflow store points at the copy's own artifact folders
    (the store holds absolute paths), so what a command logs stays in the copy."""
    shutil.copytree(finished, dest, symlinks=True)
    db = sqlite3.connect(dest / "mlflow.db")
    with db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for column in [row[1] for row in db.execute(f"PRAGMA table_info({table})") if "CHAR" in row[2].upper()
                           or "TEXT" in row[2].upper()]:
                db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?) WHERE {column} LIKE ?",
                           (str(finished), str(dest), f"%{finished}%"))
    db.close()
    return dest


# --- tests ------------------------------------------------------------------------------------

SAMPLE = """\
text
```bash
dvc exp run -S a=1 \\
  -S 'b=[x, y]'   # a comment
cvd --help
dvc repro
```
```python
cvd not-bash
```
  ```bash
  make run    # indented fence, in a list
  ```
"""


def test_extract_joins_continuations_and_drops_comments():
    assert [(c.source, c.argv) for c in extract(SAMPLE, "X.md")] == [
        ("X.md:3", ("dvc", "exp", "run", "-S", "a=1", "-S", "b=[x, y]")),
        ("X.md:5", ("cvd", "--help")),
        ("X.md:12", ("make", "run")),
    ]


def test_every_documented_command_is_run_or_a_make_target_listed_with_its_reason():
    commands = documented_commands()
    kinds = {prefix for c in commands for prefix in RUN_PREFIXES if c.text.startswith(prefix)}
    assert kinds == set(RUN_PREFIXES)
    assert all(skipped.startswith("make ") for skipped in NOT_RUN)
    for command in to_run():
        assert not command.text.startswith("make ") or command.argv == ("make", "run"), command


def test_a_large_data_command_gets_its_data_set_and_the_size_limit(tmp_path):
    (tmp_path / "params.yaml").write_text("cnn:\n  epochs: 30\n  alexnet:\n    train:\n"
                                          "      epochs: {grayscale: 4, colour: 16}\n")
    argv = ("dvc", "exp", "run", "-S", "data.dataset=mnist", "-S", "data.path=DIR", "-S", "cnn.epochs=40")
    out, data = substituted_exp_run(argv, tmp_path)
    assert (data / "train-images-idx3-ubyte.gz").exists()
    given = overrides(out)
    assert given["data.path"] == str(data) and given["data.dataset"] == "mnist"
    assert given["cnn.epochs"] == "1" and given["cnn.alexnet.train.epochs"] == "1"
    assert given["data.limit_per_class"] == SIZE_LIMIT["data.limit_per_class"]


def test_a_test_folder_command_gets_the_folder_data_set_and_its_test_folder(tmp_path):
    (tmp_path / "params.yaml").write_text("cnn:\n  epochs: 30\n")
    argv = ("dvc", "exp", "run", "-S", "data.dataset=folder", "-S", "data.path=DIR", "-S", "data.test_path=DIR2")
    out, data = substituted_exp_run(argv, tmp_path)
    given = overrides(out)
    assert given["data.path"] == str(data) and given["data.test_path"] == str(folder_for_test_path(data))
    train, test = ({p.name for p in folder.iterdir()} for folder in (data, folder_for_test_path(data)))
    assert train == test and len(train) == 10  # the same class folders
    contents = [{p.read_bytes() for p in folder.glob("*/*")} for folder in (data, folder_for_test_path(data))]
    assert contents[1] and not contents[0] & contents[1]  # other images


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.heavy) if c.text.startswith("dvc exp run")
                                     and "--queue" not in c.argv else c for c in to_run()],
                         ids=lambda c: f"{c.source} {c.text[:60]}")
def test_documented_command_runs_as_written(command: Documented, small_run: Path, tmp_path: Path):
    repo = copy_run(small_run, tmp_path / "repo")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    label = f"{command.source}: {command.text}"
    if command.argv == ("make", "run"):
        out = run(["make", "run", f"VENV={venv_view(scratch)}"], repo, label)
        assert (repo / "reports/leaderboard.md").read_text().strip() in out.stdout
    elif command.text.startswith("dvc exp run"):
        argv, data = substituted_exp_run(command.argv, repo)
        run(argv, repo, label, warm=True)
        if "--queue" in argv:
            assert "Queued" in run(["dvc", "queue", "status"], repo, "dvc queue status").stdout
        else:
            check_exp_run(argv, repo, data)
    elif command.text in SERVERS:
        run_server(list(command.argv), repo, label)
    else:  # in a fork of the warm interpreter too: the same `pipeline.cli.main`, without its imports
        run(make_inputs(command.argv, repo), repo, label, warm=True)


def test_every_recorded_run_is_still_its_documented_command():
    """docs/measured/<name>/run.json (benchmarks/bench_documented.py --record) holds the figures the
    docs and README show for one command: that command must still be documented, word for word, in
    the file it was recorded from, with the record's marker on the same page. Changing the command
    without recording it again fails here."""
    records = sorted((REPO_ROOT / "docs" / "measured").glob("*/run.json"))
    for path in records:
        run = json.loads(path.read_text(encoding="utf-8"))
        file = run["source"].split(":")[0]
        text = (REPO_ROOT / file).read_text(encoding="utf-8")
        documented = [c.text for c in extract(text, file)]
        assert shlex.join(shlex.split(run["command"])) in documented, (
            f"{path.relative_to(REPO_ROOT)}: its command is no longer documented in {file}; record it again")
        assert f"<!-- results:measured_{path.parent.name} -->" in text, f"{file} does not show {path.parent.name}"

"""Run one documented `dvc exp run` command exactly as written, on real data, and record what it measured.

    python benchmarks/bench_documented.py docs/large-data.md:23 --data DIR [--test-data DIR2] \\
        [--record docs/measured/fashion_mnist] [--budget 1800]

The command is the one starting at that line of a ```bash block (``\\`` continuations joined,
``# comments`` dropped). Only its placeholders change: ``DIR`` (``data.path``) becomes ``--data``
and ``DIR2`` (``data.test_path``) ``--test-data``; every other word runs as written. It runs in a
fresh copy of the repository (tracked and new files; no outputs, no dvc.lock, no DVC cache, no
mlflow.db: nothing is reused), each ``Running stage`` line time-stamped, so a stage's wall time
includes its process start, imports, MLflow logging and DVC's bookkeeping.

The named baseline is the models' own fit seconds (``metrics/*/<model>.run.json``): wall / fit
shows what everything around the learning costs. The total is checked against ``--budget``.

``--record FOLDER`` keeps what the docs and the README's results table are generated from
(docs/hooks.py): ``run.json`` (the documented command, the source line, the commit, the date, the
CPUs, the total and per-stage wall seconds), and the run's ``summary.json``, ``leaderboard.csv``,
``curve.json``, ``learning_curve.csv`` and the learning-curve, budget-curve and accuracy plots.
The folder is replaced as a whole, only after the run succeeded.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench_pipeline import OUTPUTS, copy_repo, fit_seconds, timed_repro

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDERS = {"data.path=DIR": "data", "data.test_path=DIR2": "test_data"}
# what --record keeps: run output -> name in the record folder
RECORDED = {
    "reports/summary.json": "summary.json",
    "reports/leaderboard.csv": "leaderboard.csv",
    "reports/curve/summary.json": "curve.json",
    "reports/curve/learning_curve.csv": "learning_curve.csv",
    "reports/curve/learning_curve.png": "learning_curve.png",
    "reports/plots/budget_curve.png": "budget_curve.png",
    "reports/plots/accuracy_bars.png": "accuracy_bars.png",
}


def documented_command(source: str) -> list[str]:
    """The words of the command starting at ``FILE:LINE`` (a line inside a ```bash block)."""
    path, _, line = source.rpartition(":")
    if not path or not line.isdigit():
        raise SystemExit(f"{source}: expected FILE:LINE, e.g. docs/large-data.md:23")
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    index = int(line) - 1
    if not 0 <= index < len(lines):
        raise SystemExit(f"{source}: {path} has {len(lines)} lines")
    text = ""
    while index < len(lines) and lines[index].rstrip().endswith("\\"):
        text += lines[index].rstrip()[:-1] + " "
        index += 1
    words = shlex.split(text + (lines[index] if index < len(lines) else ""), comments=True)
    if words[:3] != ["dvc", "exp", "run"]:
        raise SystemExit(f"{source}: not a `dvc exp run` command: {' '.join(words[:6])!r}")
    return words


def substitute(words: list[str], paths: dict[str, Path | None]) -> list[str]:
    """``words`` with each placeholder value replaced by its data folder (and nothing else changed)."""
    out = []
    for word in words:
        if word in PLACEHOLDERS:
            given = paths[PLACEHOLDERS[word]]
            if given is None:
                raise SystemExit(f"the command sets {word}: give --{PLACEHOLDERS[word].replace('_', '-')}")
            word = f"{word.split('=')[0]}={given.resolve()}"
        out.append(word)
    return out


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return head.stdout.strip() + ("+changes" if dirty else "")


def groups(stages: list[tuple[str, float]], repo: Path) -> list[dict]:
    """Per stage group (``train_classical``, ...): stages, wall seconds and the models' fit seconds."""
    out: dict[str, dict] = {}
    for name, seconds in stages:
        group = out.setdefault(name.split("@")[0], {"group": name.split("@")[0], "stages": 0, "wall_seconds": 0.0,
                                                    "fit_seconds": None})
        group["stages"] += 1
        group["wall_seconds"] += seconds
        fit = fit_seconds(repo, name)
        if fit is not None:
            group["fit_seconds"] = (group["fit_seconds"] or 0.0) + fit
    return list(out.values())


def report(source: str, stage_groups: list[dict], total: float, budget: float) -> None:
    print(f"\n### {source}\n\n| stage group | stages | wall s | model fit s (baseline) | wall / fit |\n"
          "|---|---:|---:|---:|---:|")
    for g in stage_groups:
        fit = g["fit_seconds"]
        ratio = f"{g['wall_seconds'] / fit:.1f}x" if fit else "-"
        print(f"| {g['group']} | {g['stages']} | {g['wall_seconds']:.1f} | {'-' if fit is None else f'{fit:.1f}'} "
              f"| {ratio} |")
    fits = sum(g["fit_seconds"] or 0.0 for g in stage_groups)
    print(f"| **total** | {sum(g['stages'] for g in stage_groups)} | **{total:.1f}** | {fits:.1f} | "
          f"{total / fits if fits else float('nan'):.1f}x |")
    print(f"\nend to end: {total:.0f} s = {total / 60:.1f} min = {total / budget:.2f} x the {budget:.0f} s budget "
          f"({'within' if total <= budget else 'OVER'})")


def record(folder: Path, repo: Path, info: dict) -> None:
    """Replace ``folder`` with the run's record, written next to it first."""
    staging = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for produced, name in RECORDED.items():
        if (repo / produced).is_file():
            shutil.copy2(repo / produced, staging / name)
    (staging / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    print(f"recorded {len(list(folder.iterdir()))} files in {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="FILE:LINE of the documented command, e.g. docs/large-data.md:23")
    parser.add_argument("--data", type=Path, help="the folder DIR stands for")
    parser.add_argument("--test-data", type=Path, help="the folder DIR2 stands for")
    parser.add_argument("--record", type=Path, help="keep the run's record in this folder (replaced)")
    parser.add_argument("--budget", type=float, default=1800.0, help="seconds the run may take (default 1800)")
    parser.add_argument("--keep", type=Path, help="run in this (new) directory and keep it")
    args = parser.parse_args()

    words = documented_command(args.source)
    argv = substitute(words, {"data": args.data, "test_data": args.test_data})
    work = args.keep or Path(tempfile.mkdtemp(prefix="cvd-documented-"))
    repo = copy_repo(work / "repo", skip=OUTPUTS + ("dvc.lock",))
    started = dt.datetime.now(dt.timezone.utc)
    print(f"{shlex.join(words)}\nin {repo} ({os.cpu_count()} CPUs)", flush=True)
    try:
        stages, total = timed_repro(repo, tuple(argv), echo=True)
    except SystemExit:
        print(f"the failed run is kept in {work}")
        raise
    stage_groups = groups(stages, repo)
    report(args.source, stage_groups, total, args.budget)
    if args.record:
        info = {"source": args.source, "command": shlex.join(words), "commit": commit(),
                "date": started.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "machine": platform.machine(),
                "wall_seconds": round(total, 1), "budget_seconds": args.budget,
                "stages": [{"stage": name, "wall_seconds": round(s, 1)} for name, s in stages],
                "stage_groups": [{**g, "wall_seconds": round(g["wall_seconds"], 1),
                                  "fit_seconds": None if g["fit_seconds"] is None else round(g["fit_seconds"], 1)}
                                 for g in stage_groups]}
        record(args.record, repo, info)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

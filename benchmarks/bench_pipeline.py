"""Wall time of the default `dvc repro`, stage by stage, against the 5-minute budget of `make run`.

Copies the repository (tracked + new files, no outputs, no DVC cache, no dvc.lock, no
mlflow.db) into a temporary directory and runs ``dvc repro`` there, time-stamping each
``Running stage '...'`` line as DVC prints it. A stage's wall time runs from its line to the
next one (the last stage's to the end), so it includes the process start, imports, MLflow
logging and DVC's own bookkeeping. Each classical stage's command is also rerun alone
afterwards (``cvd train-classical``, no DVC) to time the process by itself. The named baseline is the models' own fit time
(``fit_seconds`` in ``metrics/*/<model>.run.json``): the ratio wall / fit shows what the
per-stage processes cost on top of the learning itself.

    python benchmarks/bench_pipeline.py [--set classical.classifiers=[logreg]] [--baseline-set KEY=VALUE ...] [--keep DIR]

``--set`` takes ``dvc exp run -S``-style dotted overrides (YAML values) for a variant.
``--baseline-set`` runs a second, named baseline configuration in the same invocation, one
after the other on the same machine (e.g. the earlier two-classifiers-per-feature default:
``--baseline-set 'classical.classifiers=[logreg,rbf_svm]'``) and prints both totals and
their ratio. Each classical stage is checked against the overhead target
wall <= 2 x fit + 2 s (its DVC stage wall, so DVC's own bookkeeping counts against it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.config import apply_overrides, parse_config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

BUDGET_S = 300.0
# what a run produces: the copy starts without it, as a fresh clone would after `make clean-outputs`
OUTPUTS = ("data/", "metrics/", "plots/", "reports/", "artifacts/")


def copy_repo(dest: Path, skip: tuple[str, ...]) -> Path:
    """A fresh git repo at ``dest`` holding the project's files (tracked + new, not ignored),
    except the paths starting with one of ``skip``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(skip):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.email=copy@example.invalid", "-c", "user.name=copy"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


def overhead_target(fit: float) -> float:
    """A classical stage's allowed wall seconds for a model fit of ``fit`` seconds."""
    return 2.0 * fit + 2.0


def apply_params(repo: Path, overrides: list[str]) -> None:
    """Write ``KEY=VALUE`` overrides into the copy's params.yaml, validated as every stage would."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    values = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"--set {item!r}: expected KEY=VALUE")
        values[key] = yaml.safe_load(value)
    params = apply_overrides(params, values)
    try:
        parse_config(params)
    except ConfigError as exc:
        sys.exit(f"--set: {exc}")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def timed_repro(repo: Path, argv: tuple[str, ...] = ("dvc", "repro"), echo: bool = False
                ) -> tuple[list[tuple[str, float]], float]:
    """Run ``argv`` (a DVC command) in ``repo``: (stage, wall seconds) in the order run, and the total.
    ``echo`` also prints DVC's other lines (the stages' own output)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the copy's own mlflow.db
    start = time.perf_counter()
    marks: list[tuple[str, float]] = []
    proc = subprocess.Popen(list(argv), cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.match(r"Running stage '([^']+)'", line)
        if match:
            marks.append((match.group(1), time.perf_counter() - start))
            print(f"  {marks[-1][1]:6.1f} s  {match.group(1)}", flush=True)
        elif echo:
            print(f"           {line.rstrip()}", flush=True)
    if proc.wait() != 0:
        sys.exit(f"{' '.join(argv[:3])} failed in {repo}")
    total = time.perf_counter() - start
    ends = [t for _, t in marks[1:]] + [total]
    return [(name, end - t) for (name, t), end in zip(marks, ends)], total


def run_info(repo: Path, stage: str) -> dict | None:
    if stage.startswith("train_classical@"):
        path = repo / "metrics/classical" / f"{stage.split('@')[1]}.run.json"
    elif stage.startswith("train_cnn@"):
        path = repo / "metrics/cnn" / f"{stage.split('@')[1]}.run.json"
    else:
        return None
    return json.loads(path.read_text())


def fit_seconds(repo: Path, stage: str) -> float | None:
    info = run_info(repo, stage)
    return None if info is None else float(info["fit_seconds"])


def predict_seconds(repo: Path, stage: str) -> float | None:
    """Seconds the classical stage spent predicting validation and test, each once."""
    info = run_info(repo, stage)
    return None if info is None or "predict_seconds" not in info else float(info["predict_seconds"])


def work_target(fit: float, predict: float) -> float:
    """Issue 14 on large data: a classical stage costs at most 1.2 x (fit + one prediction pass) + 10 s."""
    return 1.2 * (fit + predict) + 10.0


def run_variant(overrides: list[str], keep: Path | None) -> tuple[list[tuple[str, float]], float, Path, Path]:
    work = keep or Path(tempfile.mkdtemp(prefix="cvd-bench-"))
    repo = work / "repo"
    try:
        copy_repo(repo, skip=OUTPUTS + ("dvc.lock",))
        apply_params(repo, overrides)
    except SystemExit:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"dvc repro in {repo} ({os.cpu_count()} CPUs){' with ' + ', '.join(overrides) if overrides else ''}")
    stages, total = timed_repro(repo)
    return stages, total, repo, work


def process_seconds(repo: Path, stage: str) -> float:
    """Wall seconds of the stage's own command, rerun alone in the finished copy (no DVC)."""
    feature, classifier = stage.split("@")[1].split("-", 1)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    start = time.perf_counter()
    subprocess.run(["cvd", "train-classical", "--feature", feature, "--classifier", classifier], cwd=repo, env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def report(stages: list[tuple[str, float]], total: float, repo: Path, alone: bool = True,
           budget_s: float = BUDGET_S) -> None:
    groups: dict[str, list[float]] = {}
    fits: dict[str, float] = {}
    within, within_process, within_work = [], [], []
    print("\n| stage | wall s (in dvc repro) | its command alone s | model fit s | 2 x fit + 2 s | met by wall / command "
          "| predict val+test s | 1.2 x (fit + predict) + 10 s | met by wall |"
          "\n|---|---:|---:|---:|---:|---|---:|---:|---|")
    for name, seconds in stages:
        fit = fit_seconds(repo, name)
        shown = target = mark = predicted = work = work_mark = ""
        if fit is not None and name.startswith("train_classical@"):
            command = process_seconds(repo, name) if alone else float("nan")
            within.append(seconds <= overhead_target(fit))
            if alone:
                within_process.append(command <= overhead_target(fit))
            shown, target = ("" if not alone else f"{command:.2f}"), f"{overhead_target(fit):.2f}"
            mark = f"{'yes' if within[-1] else 'no'}" + (f" / {'yes' if within_process[-1] else 'no'}" if alone else "")
            predict = predict_seconds(repo, name)
            if predict is not None:
                within_work.append(seconds <= work_target(fit, predict))
                predicted, work = f"{predict:.2f}", f"{work_target(fit, predict):.1f}"
                work_mark = "yes" if within_work[-1] else "no"
        print(f"| `{name}` | {seconds:.1f} | {shown} | {'' if fit is None else f'{fit:.2f}'} | {target} | {mark} "
              f"| {predicted} | {work} | {work_mark} |")
        group = name.split("@")[0]
        groups.setdefault(group, []).append(seconds)
        if fit is not None:
            fits[group] = fits.get(group, 0.0) + fit

    print("\n| stage group | stages | wall s | per stage s | model fit s (baseline) | wall / fit |\n"
          "|---|---:|---:|---:|---:|---:|")
    for group, times in groups.items():
        fit = fits.get(group)
        ratio = f"{sum(times) / fit:.1f}x" if fit else "-"
        print(f"| {group} | {len(times)} | {sum(times):.1f} | {sum(times) / len(times):.1f} | "
              f"{'-' if fit is None else f'{fit:.1f}'} | {ratio} |")
    all_fit = sum(fits.values())
    print(f"| **total** | {len(stages)} | **{total:.1f}** | | {all_fit:.1f} | {total / all_fit:.1f}x |")
    verdict = "within" if total <= budget_s else "OVER"
    print(f"\n`dvc repro`: {total:.0f} s = {total / budget_s:.2f} x the {budget_s:.0f} s budget ({verdict})")
    if within:
        alone_text = (f", {sum(within_process)} of {len(within_process)} by their command alone"
                      if within_process else "")
        print(f"classical stages within 2 x fit + 2 s: {sum(within)} of {len(within)} by their wall in dvc repro "
              f"(DVC's bookkeeping between stages included){alone_text}")
    if within_work:
        print(f"classical stages within 1.2 x (fit + one prediction pass) + 10 s: {sum(within_work)} of "
              f"{len(within_work)} by their wall in dvc repro")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--baseline-set", dest="baseline", action="append", default=None, metavar="KEY=VALUE",
                        help="also run this baseline configuration in the same invocation")
    parser.add_argument("--keep", type=Path, help="run in this (new) directory and keep it")
    parser.add_argument("--budget", type=float, default=BUDGET_S,
                        help="seconds the whole run may take (default: make run's 300; large data: 1800)")
    parser.add_argument("--no-alone", action="store_true",
                        help="skip rerunning each classical command alone (large data: it would double their time)")
    args = parser.parse_args()

    runs = [("this configuration", args.overrides)]
    if args.baseline is not None:
        runs.append(("baseline", args.baseline))
    totals = {}
    for label, overrides in runs:
        keep = args.keep / label.replace(" ", "_") if args.keep else None
        stages, total, repo, work = run_variant(overrides, keep)
        print(f"\n### {label}: {', '.join(overrides) or 'params.yaml as committed'}")
        report(stages, total, repo, alone=not args.no_alone, budget_s=args.budget)
        totals[label] = (total, len(stages))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if len(totals) == 2:
        (new, n_new), (base, n_base) = totals["this configuration"], totals["baseline"]
        print(f"\n| run | stages | dvc repro s |\n|---|---:|---:|\n| baseline ({', '.join(args.baseline)}) | "
              f"{n_base} | {base:.0f} |\n| this configuration | {n_new} | {new:.0f} |\n\n"
              f"this / baseline: {new / base:.2f}x")


if __name__ == "__main__":
    main()

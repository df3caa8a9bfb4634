"""``cvd``'s garbage-collector thresholds (:data:`pipeline.cli_support.GC_THRESHOLDS`) against
CPython's defaults (the baseline), on stages and tools run on a finished run.

    python benchmarks/bench_gc.py [--repeats 3]

Run it in the project after ``make run``: it copies the finished run's files (not ``.git``,
``.venv`` or the MLflow store) to a temporary folder and runs there, each stage logging to a new
MLflow store of its own. Each command starts a fresh interpreter, as DVC starts a stage, and runs
``pipeline.cli.main`` with the project's thresholds or with the defaults; the two alternate,
``--repeats`` times each. Printed: the median wall time of each and the ratio, and the peak
memory (max RSS) of each.
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = ("import sys\nfrom pipeline import cli_support\n{patch}sys.argv = ['cvd', *sys.argv[1:]]\n"
       "from pipeline.cli import main\nmain()\n")
DEFAULTS = f"cli_support.GC_THRESHOLDS = {gc.get_threshold()}\n"


SKIP = (".git", ".venv", ".dvc", "mlflow.db", "mlruns", "mlartifacts", "build", "site", "benchmarks", "tests")


def timed(argv: list[str], baseline: bool, repo: Path) -> tuple[float, float]:
    """(wall s, max RSS MB) of one ``cvd ARGV`` in a fresh interpreter in ``repo``, with a new MLflow store."""
    store = tempfile.mkdtemp(dir=repo)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db", "PYTHONPATH": str(repo)}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", RUN.format(patch=DEFAULTS if baseline else ""), *argv],
                               cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"cvd {' '.join(argv)} failed (wait status {status}); run it alone to see why")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    from pipeline.cli_support import GC_THRESHOLDS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not Path("reports/summary.json").is_file():
        raise SystemExit("no finished run here: run `make run` first, in the project's folder")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(".", repo, ignore=lambda folder, names: [n for n in names if n in SKIP])
        commands = [["compare"], ["explain"], ["train-cnn", "--arch", "lenet5", "--epochs", "3"],
                    ["train-classical", "--feature", "hog", "--classifier", "logreg"],
                    ["visualize", "--from-split", "test", "--n", "8"], ["describe", "alexnet"]]
        print(f"median of {args.repeats}; baseline: CPython's defaults {gc.get_threshold()}, "
              f"cvd: {GC_THRESHOLDS}")
        print(f"{'command':<40} {'baseline s':>10} {'cvd s':>7} {'ratio':>6} {'baseline MB':>12} {'cvd MB':>7}")
        for argv in commands:
            runs = {True: [], False: []}
            for _ in range(args.repeats):
                for baseline in (True, False):
                    runs[baseline].append(timed(argv, baseline, repo))
            (base, base_mb), (ours, ours_mb) = ((statistics.median(w for w, _ in runs[b]), max(m for _, m in runs[b]))
                                                for b in (True, False))
            label = "cvd " + " ".join(argv[:4])
            print(f"{label:<40} {base:>10.2f} {ours:>7.2f} {base / ours:>5.2f}x {base_mb:>12.0f} {ours_mb:>7.0f}")


if __name__ == "__main__":
    main()

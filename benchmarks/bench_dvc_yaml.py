"""DVC's YAML reading with ruamel.yaml's C loader (``ruamel.yaml.clib``, a project dependency)
against its pure-Python loader (the baseline: what ruamel.yaml >= 0.19 uses unless the C
extension is installed).

    python benchmarks/bench_dvc_yaml.py [--repeats 5] [--repo .]

DVC reads ``dvc.yaml`` and ``dvc.lock`` with ruamel.yaml's safe loader several times per
command and per stage (``dvc status``, ``dvc repro``, ``dvc exp run``); this project's lock
holds every stage's code files, about 5,000 lines. Two measurements, each with the baseline in
the same run:

1. parsing the repository's ``dvc.lock`` as DVC does (``typ="safe"``), C against pure Python;
2. ``dvc status`` (no stage runs) in a subprocess, with the C extension importable against
   hidden (``sys.modules["_ruamel_yaml"] = None``, so ruamel.yaml falls back to pure Python).

The round-trip load and dump DVC makes to rewrite the lock after each stage is pure Python
either way; the C loader only speeds up the reads.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

DVC_STATUS = "import sys\n{hide}from dvc.cli import main\nsys.exit(main(['status', '-q']))\n"
HIDE_C = "sys.modules['_ruamel_yaml'] = None\n"


def parse_seconds(text: str, pure: bool, repeats: int) -> float:
    from ruamel.yaml import YAML

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        YAML(typ="safe", pure=pure).load(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def status_seconds(repo: Path, hide_c: bool, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", DVC_STATUS.format(hide=HIDE_C if hide_c else "")], cwd=repo,
                       check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    try:
        import _ruamel_yaml  # noqa: F401
    except ImportError:
        raise SystemExit("ruamel.yaml.clib is not installed: pip install -e . installs it")
    lock = (args.repo / "dvc.lock").read_text()
    print(f"median of {args.repeats}; dvc.lock: {len(lock.splitlines()):,} lines")
    print(f"{'measurement':<28} {'pure Python (baseline) s':>25} {'C loader s':>11} {'ratio':>6}")
    base, fast = parse_seconds(lock, True, args.repeats), parse_seconds(lock, False, args.repeats)
    print(f"{'parse dvc.lock (safe)':<28} {base:>25.3f} {fast:>11.3f} {base / fast:>5.2f}x")
    base, fast = status_seconds(args.repo, True, args.repeats), status_seconds(args.repo, False, args.repeats)
    print(f"{'dvc status':<28} {base:>25.2f} {fast:>11.2f} {base / fast:>5.2f}x")


if __name__ == "__main__":
    main()

"""DVC's own YAML bookkeeping in this project, each measurement against a baseline in the same run.

    python benchmarks/bench_dvc_yaml.py [--repeats 5] [--repo .]

DVC reads ``dvc.yaml`` and ``dvc.lock`` with ruamel.yaml's safe loader several times per
command and per stage (``dvc status``, ``dvc repro``, ``dvc exp run``), and rewrites the whole
lock after every stage. Three measurements (medians of ``--repeats``):

1. parsing the repository's ``dvc.lock`` as DVC does (``typ="safe"``) with ruamel.yaml's C
   loader (``ruamel.yaml.clib``, a project dependency) against its pure-Python loader (the
   baseline: what ruamel.yaml >= 0.19 uses unless the C extension is installed);
2. ``dvc status`` (no stage runs) in a subprocess, with the C extension importable against
   hidden (``sys.modules["_ruamel_yaml"] = None``, so ruamel.yaml falls back to pure Python);
3. the rewrite DVC makes after every stage (``dvc.utils.serialize.modify_yaml``: a round-trip
   load and dump of the whole lock, pure Python either way) of the repository's lock, whose
   stages depend on their code through one ``code_digests/`` file each, against the baseline
   of each stage listing its ~30 source files (this project's dvc.yaml before the
   ``code_digests`` stage): the same lock with every digest file replaced by the files it
   lists, each with the MD5 and size DVC records.
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

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


def expanded_lock(repo: Path) -> dict:
    """The repository's lock with every code digest dependency replaced by the files it lists."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        deps = []
        for dep in stage.get("deps", []):
            if not dep["path"].startswith("code_digests/"):
                deps.append(dep)
                continue
            for line in (repo / dep["path"]).read_text().splitlines():
                path = line.split("  ", 1)[1]
                data = (repo / path).read_bytes()
                deps.append({"path": path, "hash": "md5", "md5": hashlib.md5(data).hexdigest(), "size": len(data)})
        stage["deps"] = sorted(deps, key=lambda d: d["path"])
    return lock


def rewrite_seconds(path: Path, repeats: int) -> float:
    from dvc.utils.serialize import modify_yaml

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with modify_yaml(path) as data:
            data["schema"] = data["schema"]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rewrite_table(repo: Path, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base, ours = Path(tmp) / "source-files.lock", Path(tmp) / "code-digests.lock"
        base.write_text(yaml.safe_dump(expanded_lock(repo), sort_keys=False))
        ours.write_text((repo / "dvc.lock").read_text())
        lines = [len(p.read_text().splitlines()) for p in (base, ours)]
        slow, fast = rewrite_seconds(base, repeats), rewrite_seconds(ours, repeats)
    print(f"{'rewrite dvc.lock':<28} {'source files (baseline) s':>25} {'code digests s':>15} {'ratio':>6}")
    print(f"{f'({lines[0]:,} vs {lines[1]:,} lines)':<28} {slow:>25.3f} {fast:>15.3f} {slow / fast:>5.2f}x")


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
    print()
    rewrite_table(args.repo, args.repeats)


if __name__ == "__main__":
    main()

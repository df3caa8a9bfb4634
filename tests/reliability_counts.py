"""The numbers of README.md's "Reliability" section, counted from the tests themselves.

``python tests/reliability_counts.py`` prints the section's two count lines;
tests/test_faults.py::test_readme_quotes_the_counts checks that README.md holds them, so they
cannot go stale. Faults: the kill trials of tests/test_faults.py (:data:`test_faults.TRIALS`)
and its other fault tests. Bad inputs: the collected cases of tests/test_untrusted_images.py,
and those of the tests in :data:`NAMED_FILES` whose name says they feed a bad input.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
UNTRUSTED = "test_untrusted_images.py"
NAMED_FILES = ("test_config.py", "test_datasets.py", "test_cli.py", "test_predict.py")
BAD_NAME = re.compile(r"::test_\w*(bad|corrupt|invalid|unknown|reject|missing|truncat|empty)")
OTHER_FAULTS = ("test_full_disk", "test_read_only", "test_two_dvc_repro")


def collected(files: tuple[str, ...]) -> list[str]:
    """The test ids pytest collects from ``files`` (nothing run)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          *(str(TESTS / f) for f in files)], capture_output=True, text=True, cwd=TESTS.parent)
    return [line for line in out.stdout.splitlines() if "::" in line]


def lines() -> list[str]:
    sys.path.insert(0, str(TESTS))
    from test_faults import TRIALS

    kills = {kind: trials for kind, (_, trials, _) in TRIALS.items()}
    ids = collected((UNTRUSTED, *NAMED_FILES))
    untrusted = sum(UNTRUSTED in i for i in ids)
    named = sum(bool(BAD_NAME.search(i)) for i in ids if UNTRUSTED not in i)
    per_stage = ", ".join(f"{kind} {n}" for kind, n in kills.items())
    return [f"* **{sum(kills.values()) + len(OTHER_FAULTS)} faults injected, all survived:** "
            f"{sum(kills.values())} SIGKILLs at seeded random moments ({per_stage}),",
            f"* **{untrusted + named} bad inputs tried:** {untrusted} untrusted image files and {named} bad "
            f"parameters, options and data files,"]


if __name__ == "__main__":
    print("\n".join(lines()))

"""A heartbeat for long, silent steps: a large-data SVM fit can run for minutes without a word.

scikit-learn's estimators report nothing while they fit (``verbose`` prints solver internals,
not progress), so :func:`heartbeat` prints one line to stderr every ``every`` seconds while its
block runs: what is running and for how long. A block that ends sooner prints nothing, so the
default digits run stays as quiet as before.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

EVERY_S = 30.0


@contextlib.contextmanager
def heartbeat(what: str, every: float = EVERY_S, stream: TextIO | None = None) -> Iterator[None]:
    """``<what>: still running after N s`` every ``every`` seconds until the block ends."""
    stream = stream or sys.stderr
    stop = threading.Event()
    start = time.perf_counter()

    def beat() -> None:
        while not stop.wait(every):
            print(f"{what}: still running after {time.perf_counter() - start:.0f} s", file=stream, flush=True)

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()

"""Run ``cvd`` stage commands in forks of one warm process, and SIGKILL them on request.

``python tests/fork_runner.py MODULE...`` imports ``pipeline.cli`` and the heavy libraries
named (what ``cvd <stage>`` spends most of its start-up importing), then reads one JSON request
a line from stdin: ``{"cwd": ..., "args": [...], "log": ..., "kill_after_cpu": seconds or null}``.
For each it forks a child that runs ``cvd ARGS`` in ``cwd`` exactly as the console script does
(``pipeline.cli.main``: the same code, the same exit codes; stdout and stderr go to ``log``),
and when ``kill_after_cpu`` is given the child is SIGKILLed once it has used that much CPU time;
the server reaps it and answers one JSON line:
``{"rc": exit code or null, "signal": the signal that ended it or null, "seconds": ..., "cpu": ...}``.

Forking skips the seconds of imports that every fresh ``cvd`` pays before it does anything,
so a kill at a random moment of the run lands in the stage's own work, and the fault tests
fit their time budget. The moment is counted in the child's CPU time (``ITIMER_PROF``), not
wall time: on a machine busy with other tests a wall-clock sleep in the server oversleeps, and a
stage of 0.1 s (``cvd prepare`` on the small run) would finish before every kill.
tests/test_faults.py drives it through :class:`ForkRunner`.
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class ForkRunner:
    """The client: starts ``fork_runner.py`` in ``env`` and sends it requests."""

    def __init__(self, env: dict, preload: tuple[str, ...] = ()):
        self.proc = subprocess.Popen([sys.executable, __file__, *preload], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def run(self, cwd: Path, args: list[str], log: Path, kill_after_cpu: float | None = None) -> dict:
        request = {"cwd": str(cwd), "args": args, "log": str(log), "kill_after_cpu": kill_after_cpu}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fork_runner.py exited with {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=300)  # it may still be importing


def _child(request: dict) -> None:
    """In the fork: become ``cvd ARGS`` in ``cwd``; never returns."""
    from pipeline import cli

    code = 1
    try:
        os.chdir(request["cwd"])
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.argv = ["cvd", *request["args"]]
        if request["kill_after_cpu"] is not None:
            # SIGPROF fires after that much CPU time of the whole process (all its threads); the
            # handler runs at the main thread's next bytecode and ends the process as SIGKILL does
            signal.signal(signal.SIGPROF, lambda *_: os.kill(os.getpid(), signal.SIGKILL))
            signal.setitimer(signal.ITIMER_PROF, request["kill_after_cpu"])
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # a bug: its traceback, as the console script would print it
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve() -> None:
    from pipeline import cli, quiet

    quiet.mute_library_logs()  # what cli.main does before any import
    for module in sys.argv[1:]:
        importlib.import_module(module)
    for line in sys.stdin:
        request = json.loads(line)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status, usage = os.wait4(pid, 0)
        answer = {"rc": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                  "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                  "seconds": round(time.monotonic() - start, 3), "cpu": round(usage.ru_utime + usage.ru_stime, 3)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    _serve()

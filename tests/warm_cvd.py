"""``cvd`` started from a warm interpreter, for the tests that run many DVC stages.

Every ``cvd <stage>`` that DVC starts spends 3-8 s importing scikit-learn, SciPy, skops, MLflow,
matplotlib or TensorFlow before it does anything; the tests that run documented ``dvc exp run``
commands, queues and team set-ups run hundreds of such stages. :func:`start` launches one
server per test session that imports those libraries once (``python tests/warm_cvd.py serve``);
:func:`env` gives a test the environment whose ``PATH`` finds :data:`SHIM` first, a ``cvd`` that
asks the server for a fork and runs there exactly what the console script runs
(``pipeline.cli.main``), with the caller's arguments, working directory, environment, umask and
standard streams (passed as file descriptors). The fork imports the project's own packages
afresh from the caller's ``PYTHONPATH`` (the test's copy of the repository, which a test may
have changed), never the server's.

What a fresh process would do differently is kept out: a caller whose environment changes how a
library loads (``KERAS_BACKEND``, thread and CUDA settings, ...; :data:`IMPORT_TIME_ENV`) gets the
real ``cvd`` (``exec``), as does any caller when the server is not (yet) up. A signal sent to the
shim goes to the fork; a shim that dies (SIGKILL of its process group) takes the fork with it;
the fork's exit code or signal is the shim's. Library start-up lines printed at import time are
printed once by the server, not per stage: tests of what a stage prints use the real ``cvd``.

Plain Python (no pytest).
"""
from __future__ import annotations

import gc
import json
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("pipeline", "features", "models", "comparison")  # pyproject's packages.find
PRELOAD = ("numpy", "scipy.stats", "pandas", "sklearn.pipeline", "sklearn.linear_model", "sklearn.svm",
           "sklearn.ensemble", "sklearn.neighbors", "sklearn.decomposition", "sklearn.cluster", "skops.io",
           "skimage.feature", "cv2", "matplotlib.pyplot", "adjustText", "mlflow", "mlflow.sklearn",
           "tensorflow", "keras", "click", "pydantic", "yaml",
           # what MLflow imports on a stage's first call rather than at `import mlflow`: its SQLite store
           # (SQLAlchemy, Alembic; 0.6-1.2 s a stage), the Keras flavour's loaders and the git run tags
           "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store",
           "mlflow.pyfunc.loaders", "mlflow.tracing.processor.base_mlflow", "sqlalchemy.dialects.sqlite", "git")
# variables read while those libraries load: a caller that sets them otherwise gets the real `cvd`
IMPORT_TIME_ENV = re.compile(r"^(KERAS_|TF_|CUDA_|XLA_|JAX_|OMP_|MKL_|OPENBLAS_|MPL|OPENCV_|MLFLOW_LOGGING"
                             r"|PYTHON(?!PATH$)|LD_)")
IDLE_EXIT_S = 1800  # a server whose session died without stopping it goes away on its own

SHIM = """#!{python} -SE
# cvd through the test session's warm server (tests/warm_cvd.py); the real one when it is not up
import json, os, selectors, signal, socket, struct, sys
try:
    conn = socket.socket(socket.AF_UNIX)
    conn.connect({socket!r})
except OSError:
    os.execv({real!r}, [{real!r}, *sys.argv[1:]])
mask = os.umask(0o22)
os.umask(mask)
header = json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ), "umask": mask}}).encode()
socket.send_fds(conn, [struct.pack("!I", len(header))], [0, 1, 2])
conn.sendall(header)
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(sig, lambda number, frame: conn.sendall(b"%d\\n" % number))
answer = conn.makefile("rb").readline()
reply = json.loads(answer) if answer else {{"signal": int(signal.SIGKILL)}}
if reply.get("fallback"):
    os.execv({real!r}, [{real!r}, *sys.argv[1:]])
if reply.get("signal"):
    signal.signal(reply["signal"], signal.SIG_DFL)
    os.kill(os.getpid(), reply["signal"])
sys.exit(reply.get("rc", 1))
"""


def home(session_dir: Path) -> Path:
    return session_dir / "warm_cvd"


def start(session_dir: Path) -> bool:
    """Start the server unless a process of this session already has; True if this call did.
    It serves once its imports are done (~15 s); until then the shim runs the real ``cvd``."""
    folder = home(session_dir)
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        return False
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen([sys.executable, __file__, "serve", str(folder)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env=env)
    (folder / "pid").write_text(str(process.pid))
    return True


def wait_ready(session_dir: Path, timeout: float = 180) -> bool:
    """True once the server answers (its socket exists), False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (home(session_dir) / "socket").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def stop(session_dir: Path) -> None:
    pid_file = home(session_dir) / "pid"
    try:
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        pass


def env(session_dir: Path, base: dict) -> dict:
    """``base`` (a :func:`helpers.venv_env`) with the shim's folder first on ``PATH``."""
    return {**base, "PATH": f"{home(session_dir) / 'bin'}{os.pathsep}{base['PATH']}"}


# --- the server -------------------------------------------------------------------------------

def _import_time_settings(environ, defaults: dict) -> dict:
    """The variables of ``environ`` that libraries read while loading, after ``defaults`` (what
    ``cvd`` sets where the caller did not, :data:`pipeline.quiet.QUIET_LIBRARY_LOGS`)."""
    return {k: v for k, v in {**defaults, **environ}.items() if IMPORT_TIME_ENV.match(k)}


def _serve(folder: Path) -> None:
    import importlib

    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    sys.path.insert(0, str(REPO_ROOT))
    from pipeline import quiet

    # as the server's environment was before anything loaded (TensorFlow sets variables of its own)
    settings = (quiet.QUIET_LIBRARY_LOGS, _import_time_settings(os.environ, quiet.QUIET_LIBRARY_LOGS))
    quiet.mute_library_logs()
    for module in PRELOAD:
        importlib.import_module(module)
    sys.path.remove(str(REPO_ROOT))
    for name in [m for m in sys.modules if m.split(".")[0] in PROJECT_PACKAGES]:
        del sys.modules[name]  # each fork imports the project from its caller's PYTHONPATH
    base_path = list(sys.path)
    # What the imports made is never collected: a fork's garbage collections then skip it instead of
    # writing to (and so copying) every page of it. On the small run, 3 forks each, 2026-12-06:
    # `compare` 2.3 s instead of 2.7 s, `explain` 3.7 s instead of 4.0 s.
    gc.collect()
    gc.freeze()

    bin_dir = folder / "bin"
    bin_dir.mkdir()
    address = folder / "socket"
    shim = bin_dir / "cvd"
    shim.write_text(SHIM.format(python=sys.executable, socket=str(address),
                                real=str(Path(sys.executable).parent / "cvd")))
    shim.chmod(0o755)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(address))
    server.listen(16)
    server.settimeout(60)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the kernel
    print(f"serving on {address} after importing {len(PRELOAD)} modules", flush=True)
    last = time.monotonic()
    while folder.exists() and time.monotonic() - last < IDLE_EXIT_S:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        last = time.monotonic()
        conn.settimeout(None)
        if os.fork() == 0:
            server.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _handle(conn, settings, base_path)  # never returns
        conn.close()


def _receive(conn: socket.socket) -> dict:
    data, fds, _, _ = socket.recv_fds(conn, 4, 3)
    (size,) = struct.unpack("!I", data)
    payload = b""
    while len(payload) < size:
        chunk = conn.recv(size - len(payload))
        if not chunk:
            raise ConnectionError("the shim went away")
        payload += chunk
    request = json.loads(payload)
    request["fds"] = fds
    return request


def _handle(conn: socket.socket, settings: tuple[dict, dict], base_path: list) -> None:
    """In a fork of the server: fork the worker that becomes ``cvd``, pass the shim's signals to
    it, kill it if the shim dies, and answer its exit code or signal."""
    request = _receive(conn)
    defaults, expected = settings
    given = _import_time_settings(request["env"], defaults)
    if given != expected:
        differ = sorted(k for k in given.keys() | expected.keys() if given.get(k) != expected.get(k))
        print(f"the real cvd for {request['argv'][:1]}: its environment differs in {differ}", flush=True)
        conn.sendall(b'{"fallback": true}\n')
        os._exit(0)
    worker = os.fork()
    if worker == 0:
        conn.close()
        _work(request, base_path)  # never returns
    for fd in request["fds"]:
        os.close(fd)
    selector = selectors.DefaultSelector()
    pidfd = os.pidfd_open(worker)
    selector.register(conn, selectors.EVENT_READ)
    selector.register(pidfd, selectors.EVENT_READ)
    pending = b""
    while True:
        for key, _ in selector.select():
            if key.fileobj is not conn:  # the worker ended
                _, status = os.waitpid(worker, 0)
                reply = ({"rc": os.WEXITSTATUS(status)} if os.WIFEXITED(status)
                         else {"signal": os.WTERMSIG(status)})
                try:
                    conn.sendall((json.dumps(reply) + "\n").encode())
                finally:
                    os._exit(0)
            data = conn.recv(64)
            if not data:  # the shim died: so does the process it stood for
                os.kill(worker, signal.SIGKILL)
                os.waitpid(worker, 0)
                os._exit(0)
            pending += data
            *numbers, pending = pending.split(b"\n")
            for number in numbers:
                os.kill(worker, int(number))


def _work(request: dict, base_path: list) -> None:
    """In the worker: become ``cvd ARGS`` as the console script would start it; never returns."""
    import atexit

    os.setsid()
    for fd, target in zip(request["fds"], (0, 1, 2)):
        os.dup2(fd, target)
        os.close(fd)
    for number, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL),
                            (signal.SIGHUP, signal.SIG_DFL), (signal.SIGQUIT, signal.SIG_DFL)):
        signal.signal(number, handler)
    os.umask(request["umask"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [str(Path(sys.executable).parent), *extra, *base_path]
    sys.argv = [str(Path(sys.executable).parent / "cvd"), *request["argv"]]
    code, interrupted = 1, False
    try:
        from pipeline import cli

        cli.main()
        code = 0
    except SystemExit as exc:  # as the interpreter ends on it: an int is the code, a message is printed
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException as exc:  # noqa: BLE001 -- uncaught: its traceback, as the console script prints it
        import traceback

        traceback.print_exc()
        interrupted = isinstance(exc, KeyboardInterrupt)
    finally:
        try:
            atexit._run_exitfuncs()  # what interpreter shutdown runs (MLflow ends its runs there)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            if interrupted:  # Python ends an uncaught KeyboardInterrupt by dying of SIGINT
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGINT)
            os._exit(code)

if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(Path(sys.argv[2]))

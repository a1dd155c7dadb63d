"""`python -m examples.support_desk stack`: the Support Desk in the four environments a plan walks.

Each environment is one `serve` child process at the URL the sample plan reads for it
(`SUPPORT_DESK_<ENV>_URL`, default http://127.0.0.1:8081 … 8084), reading its flags from the
file Release Warden's flagd-file backend writes (`<flags dir>/<env>.flagd.json`, the flags dir
of `WARDEN_FLAGS_DIR` / `WARDEN_STATE_DIR`, as `warden flags init` uses it), with simulated
traffic so metric checks have something to measure. It runs until Ctrl-C or SIGTERM, then
stops every child by its PID.

`--detach` runs the same stack in the background and returns once every environment answers
`/healthz` (its PID in `<state dir>/support-desk.pid`); `--stop` stops that one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from examples.support_desk.config import Build
from examples.support_desk.launcher import SupportDeskProcess

#: The sample plan's stages, each with its default port and simulated traffic.
ENVIRONMENTS = {"dev": 8081, "staging": 8082, "pilot": 8083, "production": 8084}
#: Requests per second: enough in pilot and production for the guards' rate windows.
TRAFFIC = {"dev": 5.0, "staging": 5.0, "pilot": 40.0, "production": 40.0}


class StackError(RuntimeError):
    """The stack cannot start as configured (a URL that is not local, a port in use)."""


def url_variable(environment: str) -> str:
    return f"SUPPORT_DESK_{environment.upper()}_URL"


def port_for(environment: str, environ: dict[str, str]) -> int:
    """The port the plan expects this environment on; the service only listens on 127.0.0.1."""
    name = url_variable(environment)
    url = environ.get(name) or f"http://127.0.0.1:{ENVIRONMENTS[environment]}"
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        raise StackError(f"{name}={url}: the stack serves http://127.0.0.1:<port> only")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise StackError(f"{name}={url}: give a port, e.g. http://127.0.0.1:8081")
    return port


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def default_flags_dir() -> tuple[Path, Path]:
    """Release Warden's flags dir and state dir, from the same settings the `warden` CLI reads."""
    from warden.settings import Settings

    settings = Settings()
    return settings.flags_path, settings.resolved_state_dir


def pid_file(state_dir: Path) -> Path:
    return state_dir / "support-desk.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # an exited process nobody has reaped yet is not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _running(state_dir: Path) -> int | None:
    try:
        pid = int(pid_file(state_dir).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def detach(argv: list[str], *, timeout: float = 120.0) -> int:
    """Start `stack` (with `argv`) in the background; return once it says every environment is up."""
    _, state_dir = default_flags_dir()
    running = _running(state_dir)
    if running is not None:
        print(  # noqa: T201 - command-line error
            f"support-desk: a stack already runs (pid {running}); stop it with "
            "`python -m examples.support_desk stack --stop`",
            file=sys.stderr,
        )
        return 2
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "support-desk-stack.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.support_desk", "stack", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command and its terminal
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = log_path.read_text(errors="replace")
        if READY in output:
            pid_file(state_dir).write_text(str(process.pid))
            print(output.strip())  # noqa: T201
            print(  # noqa: T201
                f"stack pid {process.pid}; stop it with `python -m examples.support_desk stack --stop`"
            )
            return 0
        if process.poll() is not None:
            print(output.strip(), file=sys.stderr)  # noqa: T201
            return process.returncode or 1
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    message = f"support-desk: the stack was not up after {timeout:.0f}s; see {log_path}"
    print(message, file=sys.stderr)  # noqa: T201
    return 1


def stop_detached(*, timeout: float = 30.0) -> int:
    """Stop the stack `--detach` started (it stops its environments); 0 also when none runs."""
    _, state_dir = default_flags_dir()
    pid = _running(state_dir)
    pid_file(state_dir).unlink(missing_ok=True)
    if pid is None:
        print("support-desk: no stack running")  # noqa: T201
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    print(f"support-desk: stack pid {pid} stopped")  # noqa: T201
    return 0


#: What the stack prints once every environment answers.
READY = "Ctrl-C or SIGTERM stops them"


def run_stack(
    *, build: Build, flags_dir: Path | None, simulate_rps: float | None, seed: int | None
) -> int:
    environ = dict(os.environ)
    warden_flags, state_dir = default_flags_dir()
    flags_dir = flags_dir or warden_flags
    try:
        ports = {env: port_for(env, environ) for env in ENVIRONMENTS}
        busy = [f"{url_variable(env)} port {port}" for env, port in ports.items() if _in_use(port)]
        if busy:
            raise StackError(
                "already in use: " + ", ".join(busy) + " (stop what listens there, or point the "
                "SUPPORT_DESK_<ENV>_URL variables at free ports for both the stack and the plan)"
            )
    except StackError as exc:
        print(f"support-desk: {exc}", file=sys.stderr)  # noqa: T201 - command-line error
        return 2
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    state_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as desks:
        for env, port in ports.items():
            flags_file = flags_dir / f"{env}.flagd.json"
            desk = SupportDeskProcess(
                port=port,
                flags_file=flags_file,
                build=build,
                simulate_rps=TRAFFIC[env] if simulate_rps is None else simulate_rps,
                seed=seed,
                log_file=state_dir / f"support-desk-{env}.log",
            )
            try:
                desks.enter_context(desk)
            except (RuntimeError, TimeoutError) as exc:
                print(f"support-desk: {env} did not start: {exc}", file=sys.stderr)  # noqa: T201
                return 1
            print(  # noqa: T201 - what the command is for
                f"support-desk {env:<10} {desk.url}  pid {desk.pid}  flags {flags_file}",
                flush=True,
            )
        print(  # noqa: T201
            f"{build} build in {len(ports)} environments (logs {state_dir}/support-desk-*.log); "
            + READY,
            flush=True,
        )
        while not stop.wait(1.0):
            pass
    return 0

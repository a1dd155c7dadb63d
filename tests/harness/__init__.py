"""Launchers for real components the tests run against (Prometheus, PostgreSQL, Unleash)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_by_pid(process: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    """Send `sig` to a server we started; SIGKILL its process group if it has not exited in time."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

"""Run a Support Desk as a child process on 127.0.0.1, for tests, benchmarks and demos.

    with SupportDeskProcess(flags_file=path, build="bad", simulate_rps=20) as desk:
        httpx.get(f"{desk.url}/healthz")

The process is started with the same interpreter, waits until `/healthz` answers, and is
stopped by its PID: terminate, then kill if it does not exit in time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from examples.support_desk.config import ENV_API_TOKEN, Build
from examples.support_desk.flags import default_flags

__all__ = ["SupportDeskProcess", "default_flags", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SupportDeskProcess:
    def __init__(
        self,
        *,
        port: int | None = None,
        flags_file: Path | None = None,
        build: Build = "good",
        simulate_rps: float = 0.0,
        api_token: str | None = None,
        sla_overdue_rate: float | None = None,
        seed: int | None = None,
        startup_timeout: float = 30.0,
        log_file: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.flags_file = flags_file
        self.build = build
        self.simulate_rps = simulate_rps
        self.api_token = api_token
        self.sla_overdue_rate = sla_overdue_rate
        self.seed = seed
        self.startup_timeout = startup_timeout
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "examples.support_desk",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--build",
            self.build,
            "--simulate-rps",
            str(self.simulate_rps),
        ]
        if self.flags_file is not None:
            cmd += ["--flags-file", str(self.flags_file)]
        if self.sla_overdue_rate is not None:
            cmd += ["--sla-overdue-rate", str(self.sla_overdue_rate)]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        return cmd

    def start(self) -> SupportDeskProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORT_DESK_")}
        if self.api_token:
            env[ENV_API_TOKEN] = self.api_token
        # Output goes to a file (a temporary one by default) so a failed start can say why.
        if self.log_file is not None:
            self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command(), env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer yet"
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    raise RuntimeError(
                        f"support desk exited with code {code} before it was healthy:\n{self.output_tail()}"
                    )
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.HTTPError as exc:
                    last_error = type(exc).__name__
                time.sleep(0.05)
        raise TimeoutError(
            f"support desk on {self.url} not healthy after {self.startup_timeout}s ({last_error})"
        )

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def output_tail(self, lines: int = 20) -> str:
        """The last lines the process wrote (stdout and stderr)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return "\n".join(self._log.read().decode(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> SupportDeskProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

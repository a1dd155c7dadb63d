"""A real Prometheus for tests and benchmarks: Debian's `prometheus` package, on 127.0.0.1.

`PrometheusServer` writes a temporary config that scrapes the given targets every second,
starts `/usr/bin/prometheus` on a free loopback port with a temporary TSDB, waits until
`/-/ready`, and stops it by PID. Install it with `apt-get install -y --no-install-recommends
prometheus` (the package's service is not started without systemd; this runs its own).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx

DEFAULT_BINARY = "/usr/bin/prometheus"


def find_prometheus() -> str | None:
    """The Prometheus binary: $WARDEN_TEST_PROMETHEUS_BIN, /usr/bin/prometheus, or on PATH."""
    candidates = [
        os.environ.get("WARDEN_TEST_PROMETHEUS_BIN"),
        DEFAULT_BINARY,
        shutil.which("prometheus"),
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


MISSING_REASON = (
    "Prometheus is not installed (apt-get install -y --no-install-recommends prometheus, "
    "or set WARDEN_TEST_PROMETHEUS_BIN)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrometheusServer:
    """Prometheus scraping `targets` (URLs of /metrics endpoints on 127.0.0.1) every second."""

    def __init__(
        self,
        targets: list[str],
        *,
        scrape_interval_s: float = 1.0,
        binary: str | None = None,
        ready_timeout_s: float = 30.0,
    ) -> None:
        found = binary or find_prometheus()
        if found is None:
            raise RuntimeError(MISSING_REASON)
        self.binary = found
        self.targets = targets
        self.scrape_interval_s = scrape_interval_s
        self.ready_timeout_s = ready_timeout_s
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def _config(self) -> str:
        interval = f"{int(self.scrape_interval_s * 1000)}ms"
        lines = [
            "global:",
            f"  scrape_interval: {interval}",
            f"  scrape_timeout: {interval}",
            f"  evaluation_interval: {interval}",
            "scrape_configs:",
        ]
        for index, target in enumerate(self.targets):
            parts = urlsplit(target)
            if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
                raise ValueError(f"test Prometheus scrapes loopback targets only, not {target}")
            lines += [
                f"  - job_name: target{index}",
                f"    metrics_path: {parts.path or '/metrics'}",
                f"    scheme: {parts.scheme or 'http'}",
                "    static_configs:",
                f"      - targets: ['{parts.netloc}']",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> PrometheusServer:
        self._dir = tempfile.TemporaryDirectory(prefix="warden-prometheus-")
        root = Path(self._dir.name)
        config = root / "prometheus.yml"
        config.write_text(self._config(), encoding="utf-8")
        self.log_path = root / "prometheus.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        with httpx.Client(trust_env=False, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"Prometheus exited early: {self.log_tail()}")
                try:
                    if http.get(f"{self.url}/-/ready").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(
            f"Prometheus not ready after {self.ready_timeout_s:g}s: {self.log_tail()}"
        )

    def wait_for_series(self, query: str, timeout_s: float = 30.0, samples: int = 1) -> None:
        """Wait until `query` returns a value (the first samples take a few scrapes)."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(trust_env=False, timeout=2.0) as http:
            while time.monotonic() < deadline:
                try:
                    body = http.get(f"{self.url}/api/v1/query", params={"query": query}).json()
                    result = body.get("data", {}).get("result")
                    if result and len(result) >= samples:
                        value = result[0].get("value", [None, "NaN"])[1]
                        if value not in ("NaN", "+Inf", "-Inf"):
                            return
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"no data for {query!r} after {timeout_s:g}s")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

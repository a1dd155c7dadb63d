"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests: Debian's `postgresql` package.

`PostgresCluster` runs `initdb` in a fresh temporary directory, starts `postgres` on a free
loopback port (no TCP on any other address, its Unix socket in the same temporary
directory), waits until it answers, hands out URLs, and stops it by PID, removing the data.
PostgreSQL refuses to run as root, so under root the cluster belongs to the `postgres`
system user that the Debian package creates. Install it with
`apt-get install -y --no-install-recommends postgresql` (its packaged service is not needed).

    with PostgresCluster() as pg:
        url = pg.create_database("audit")   # postgresql://postgres@127.0.0.1:PORT/audit
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from tests.harness import stop_by_pid

MISSING_REASON = (
    "PostgreSQL is not installed (apt-get install -y --no-install-recommends postgresql, "
    "or set WARDEN_TEST_PG_BIN to the directory holding initdb and postgres)"
)
SUPERUSER = "postgres"


def find_pg_bindir() -> Path | None:
    """Where initdb/postgres/psql live: $WARDEN_TEST_PG_BIN, Debian's newest version, or PATH."""
    candidates: list[str] = []
    if os.environ.get("WARDEN_TEST_PG_BIN"):
        candidates.append(os.environ["WARDEN_TEST_PG_BIN"])
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += debian
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for candidate in candidates:
        bindir = Path(candidate)
        if all((bindir / tool).is_file() for tool in ("initdb", "postgres")):
            return bindir
    return None


def missing_reason() -> str | None:
    """Why a cluster cannot start here, or None when it can."""
    if find_pg_bindir() is None:
        return MISSING_REASON
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to own the cluster (apt-get install postgresql creates it)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One PostgreSQL server with its own data directory, listening only on 127.0.0.1."""

    def __init__(self, *, bindir: Path | None = None, ready_timeout_s: float = 60.0) -> None:
        found = bindir or find_pg_bindir()
        if found is None:
            raise RuntimeError(MISSING_REASON)
        self.bindir = found
        self.ready_timeout_s = ready_timeout_s
        self.port = 0
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._uid: int | None = None
        self._gid: int | None = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self._uid, self._gid = entry.pw_uid, entry.pw_gid

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def url(self) -> str:
        """The `postgres` database; use `create_database` for one of your own."""
        return self.database_url(SUPERUSER)

    def database_url(self, database: str, *, driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def log_path(self) -> Path:
        assert self._dir is not None
        return self._dir / "postgres.log"

    def start(self) -> PostgresCluster:
        self._dir = Path(tempfile.mkdtemp(prefix="warden-pg-"))
        data = self._dir / "data"
        if self._uid is not None:
            os.chown(self._dir, self._uid, self._gid or -1)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        self.port = _free_port()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(data),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                f"port={self.port}",
                "-c",
                f"unix_socket_directories={self._dir}",
                # A throwaway cluster: durability buys nothing, speed does.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=100",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self._dir,
            user=self._uid,
            group=self._gid,
            extra_groups=[] if self._uid is not None else None,
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT), SIGKILL if it hangs; the data directory is removed."""
        process, self.process = self.process, None
        stop_by_pid(process, signal.SIGINT, timeout=30)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> PostgresCluster:
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

    # -- using it -----------------------------------------------------------------------------

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL with the cluster's own psql; returns unaligned, tuples-only output."""
        psql = self.bindir / "psql"
        binary = str(psql) if psql.is_file() else (shutil.which("psql") or "psql")
        result = subprocess.run(
            [
                binary,
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, name: str | None = None, *, driver: str = "postgresql") -> str:
        """A new empty database; returns its URL (`driver="postgresql+psycopg"` for SQLAlchemy)."""
        name = name or f"db_{uuid.uuid4().hex[:12]}"
        if not name.replace("_", "").isalnum():
            raise ValueError(f"{name!r} is not a plain database name")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.database_url(name, driver=driver)

    # -- internals ----------------------------------------------------------------------------

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self._dir,
            user=self._uid,
            group=self._gid,
            extra_groups=[] if self._uid is not None else None,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {result.stdout}{result.stderr}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        last = ""
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self._log_tail()}")
            try:
                self.psql("SELECT 1")
                return
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(
            f"postgres not ready in {self.ready_timeout_s:.0f}s ({last}):\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

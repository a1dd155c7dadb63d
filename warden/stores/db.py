"""Release Warden's own database (audit trail, notice deliveries, access grants, sign-offs).

SQLite file by default (`<state dir>/audit.db`), PostgreSQL by URL (`WARDEN_AUDIT_DB_URL`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import MetaData, create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

log = logging.getLogger("warden.stores.db")

metadata = MetaData()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        _use_wal(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    return engine


def _use_wal(engine: Engine) -> None:
    """Write-ahead logging: one fsync per commit instead of the rollback journal's several, and
    readers (API, CLI) never block the workers' audit writes. Kept in the file once set."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    except OperationalError as exc:  # e.g. a file system without shared memory: keep the default
        log.warning("audit database %s stays in rollback-journal mode: %s", engine.url, exc)


def insert_for(engine: Engine):  # type: ignore[no-untyped-def]
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING (idempotent writes)."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

"""Release Warden's own database (audit trail, notice deliveries, access grants, sign-offs).

SQLite file by default (`<state dir>/audit.db`), PostgreSQL by URL (`WARDEN_AUDIT_DB_URL`).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

metadata = MetaData()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
    else:
        engine = create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    return engine


def insert_for(engine: Engine):  # type: ignore[no-untyped-def]
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING (idempotent writes)."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

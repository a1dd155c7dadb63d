"""The audit store: SQLite by default, PostgreSQL by URL; one row per event id, ever."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, String, Table, Text, func, select
from sqlalchemy.engine import Engine

from warden.models.audit import AuditEvent, AuditQuery
from warden.stores.db import insert_for, make_engine, metadata

audit_events = Table(
    "audit_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("entity", String(500), nullable=False),
    Column("result", String(50), nullable=False),
    Column("release_id", String(300)),
    Column("trace_id", String(200)),
    Column("source", String(50), nullable=False),
    Column("details", Text, nullable=False, default="{}"),
    Index("ix_audit_release", "release_id", "timestamp"),
    Index("ix_audit_time", "timestamp"),
)

#: Which notice went to which webhook: a retried notice activity does not post twice.
notice_deliveries = Table(
    "notice_deliveries",
    metadata,
    Column("notice_key", String(300), primary_key=True),
    Column("target", String(64), primary_key=True),
    Column("delivered_at", DateTime(timezone=True), nullable=False),
)

CSV_COLUMNS = [
    "eventId",
    "timestamp",
    "userId",
    "action",
    "entity",
    "result",
    "releaseId",
    "traceId",
    "source",
    "details",
]


class AuditStore:
    """Append-only. `write` is idempotent by event id, so a retried activity never adds a second row."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)

    def write(self, events: Iterable[AuditEvent]) -> int:
        """Insert events that are not stored yet; returns how many rows were new."""
        rows = [_row(e) for e in events]
        if not rows:
            return 0
        statement = (
            insert_for(self.engine)(audit_events)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount or 0

    def query(self, q: AuditQuery) -> list[AuditEvent]:
        return list(self.iter_query(q))

    def iter_query(self, q: AuditQuery) -> Iterator[AuditEvent]:
        """Matching events oldest first: the first `limit`, or with `newest` the last `limit`."""
        if q.newest:
            yield from reversed(list(self._select(q, newest=True)))
        else:
            yield from self._select(q, newest=False)

    def _select(self, q: AuditQuery, *, newest: bool) -> Iterator[AuditEvent]:
        order = (audit_events.c.timestamp, audit_events.c.event_id)
        statement = select(audit_events).order_by(*(c.desc() for c in order) if newest else order)
        if q.releaseId:
            statement = statement.where(audit_events.c.release_id == q.releaseId)
        if q.userId:
            statement = statement.where(audit_events.c.user_id == q.userId)
        if q.action:
            statement = statement.where(audit_events.c.action == q.action)
        if q.traceId:
            statement = statement.where(audit_events.c.trace_id == q.traceId)
        if q.since:
            statement = statement.where(audit_events.c.timestamp >= _utc(q.since))
        if q.until:
            statement = statement.where(audit_events.c.timestamp <= _utc(q.until))
        statement = statement.limit(q.limit)
        with self.engine.connect() as conn:
            for row in conn.execute(statement):
                yield _event(row._mapping)

    def get(self, event_id: str) -> AuditEvent | None:
        """The stored event with this id, if any."""
        statement = select(audit_events).where(audit_events.c.event_id == event_id)
        with self.engine.connect() as conn:
            row = conn.execute(statement).first()
        return None if row is None else _event(row._mapping)

    def count(self, release_id: str | None = None) -> int:
        statement = select(func.count()).select_from(audit_events)
        if release_id:
            statement = statement.where(audit_events.c.release_id == release_id)
        with self.engine.connect() as conn:
            return int(conn.execute(statement).scalar_one())

    def delivered(self, notice_key: str, target: str) -> bool:
        statement = select(notice_deliveries.c.notice_key).where(
            notice_deliveries.c.notice_key == notice_key, notice_deliveries.c.target == target
        )
        with self.engine.connect() as conn:
            return conn.execute(statement).first() is not None

    def mark_delivered(self, notice_key: str, target: str) -> None:
        statement = (
            insert_for(self.engine)(notice_deliveries)
            .values(notice_key=notice_key, target=target, delivered_at=datetime.now(UTC))
            .on_conflict_do_nothing()
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def close(self) -> None:
        self.engine.dispose()


def to_csv(events: Iterable[AuditEvent]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow(
            [
                e.eventId,
                e.timestamp.isoformat(),
                e.userId,
                e.action,
                e.entity,
                e.result,
                e.releaseId or "",
                e.traceId or "",
                e.source,
                json.dumps(e.details, sort_keys=True, ensure_ascii=False),
            ]
        )
    return buffer.getvalue()


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _row(event: AuditEvent) -> dict[str, object]:
    return {
        "event_id": event.eventId,
        "timestamp": _utc(event.timestamp),
        "user_id": event.userId,
        "action": event.action,
        "entity": event.entity,
        "result": event.result,
        "release_id": event.releaseId,
        "trace_id": event.traceId,
        "source": event.source,
        "details": json.dumps(event.details, sort_keys=True, default=str, ensure_ascii=False),
    }


def _event(row: object) -> AuditEvent:
    m = dict(row)  # type: ignore[call-overload]
    ts: datetime = m["timestamp"]
    if ts.tzinfo is None:  # SQLite keeps no zone; rows are written in UTC
        ts = ts.replace(tzinfo=UTC)
    return AuditEvent(
        eventId=m["event_id"],
        timestamp=ts,
        userId=m["user_id"],
        action=m["action"],
        entity=m["entity"],
        result=m["result"],
        releaseId=m["release_id"],
        traceId=m["trace_id"],
        source=m["source"],
        details=json.loads(m["details"] or "{}"),
    )

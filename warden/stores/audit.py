"""The audit store: SQLite by default, PostgreSQL by URL; one row per event id, ever."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    desc,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

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

#: What each release's guards measured, per stage and check, written once by its retrospective:
#: the monthly governance review aggregates the error rates guards saw from these rows.
guard_observations = Table(
    "guard_observations",
    metadata,
    Column("release_id", String(300), primary_key=True),
    Column("run_id", String(64), primary_key=True),
    Column("stage", String(100), primary_key=True),
    Column("check_name", String(100), primary_key=True),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("samples", Integer, nullable=False),
    Column("breaches", Integer, nullable=False),
    Column("value_sum", Float, nullable=False, default=0.0),
    Column("value_max", Float),
    Index("ix_guard_observations_time", "finished_at"),
)

#: Results that say something went wrong (the governance review's error trend per day).
ERROR_RESULTS = (
    "failed",
    "refused",
    "rejected",
    "unauthenticated",
    "forbidden",
    "disabled",
    "not_allowed",
    "expired",
)
#: Audit actions of permission changes: access.requested, access.applied, ...
PERMISSION_ACTIONS = ("access.requested", "access.applied", "access.rejected", "access.expired")

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

    # -- aggregates (the reports): GROUP BY in the database, never a loop over rows -----------

    def _day(self) -> ColumnElement[str]:
        """The UTC day (YYYY-MM-DD) of an event's timestamp, in this database's SQL."""
        ts = audit_events.c.timestamp
        if self.engine.dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", ts), "YYYY-MM-DD")
        return func.substr(ts, 1, 10)  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC

    def counts(
        self,
        column: str,
        since: datetime,
        until: datetime,
        *,
        release_id: str | None = None,
        action: str | None = None,
    ) -> list[tuple[str, int]]:
        """How many events per value of `column` (action, result or user_id) in [since, until),
        most first."""
        key = audit_events.c[column]
        n = func.count().label("n")
        statement = (
            select(key, n)
            .where(audit_events.c.timestamp >= _utc(since), audit_events.c.timestamp < _utc(until))
            .group_by(key)
            .order_by(desc(n), key)
        )
        if release_id is not None:
            statement = statement.where(audit_events.c.release_id == release_id)
        if action is not None:
            statement = statement.where(audit_events.c.action == action)
        with self.engine.connect() as conn:
            return [(str(k), int(c)) for k, c in conn.execute(statement)]

    def quiet_gaps(
        self, since: datetime, until: datetime, minutes: float = 5.0
    ) -> list[tuple[datetime, datetime]]:
        """Stretches of at least `minutes` with no event in [since, until), found in SQL with
        LAG over the ordered timestamps; the edges of the period count as events."""
        since, until = _utc(since), _utc(until)
        ts = audit_events.c.timestamp
        inside = (ts >= since, ts < until)
        previous = func.lag(ts).over(order_by=ts).label("previous")
        pairs = select(ts.label("at"), previous).where(*inside).subquery()
        seconds: ColumnElement[Any]
        if self.engine.dialect.name == "postgresql":
            seconds = func.extract("epoch", pairs.c.at - pairs.c.previous)
        else:
            seconds = (func.julianday(pairs.c.at) - func.julianday(pairs.c.previous)) * 86400.0
        statement = (
            select(pairs.c.previous, pairs.c.at)
            # a millisecond of slack: julianday() differences are floating point
            .where(pairs.c.previous.is_not(None), seconds >= minutes * 60 - 0.001)
            .order_by(pairs.c.at)
        )
        bounds = select(func.min(ts), func.max(ts)).where(*inside)
        with self.engine.connect() as conn:
            inner = [(_aware(a), _aware(b)) for a, b in conn.execute(statement)]
            first, last = conn.execute(bounds).one()
        threshold = minutes * 60
        if first is None:
            return [(since, until)] if (until - since).total_seconds() >= threshold else []
        first, last = _aware(first), _aware(last)
        gaps = []
        if (first - since).total_seconds() >= threshold:
            gaps.append((since, first))
        gaps += inner
        if (until - last).total_seconds() >= threshold:
            gaps.append((last, until))
        return gaps

    def events_of(
        self,
        since: datetime,
        until: datetime,
        *,
        actions: Iterable[str] | None = None,
        release_id: str | None = None,
        action_suffix: str | None = None,
        limit: int = 10_000,
    ) -> list[AuditEvent]:
        """The events in [since, until) with one of `actions` (or ending in `action_suffix`)."""
        statement = (
            select(audit_events)
            .where(audit_events.c.timestamp >= _utc(since), audit_events.c.timestamp < _utc(until))
            .order_by(audit_events.c.timestamp, audit_events.c.event_id)
            .limit(limit)
        )
        if actions is not None:
            statement = statement.where(audit_events.c.action.in_(list(actions)))
        if action_suffix is not None:
            statement = statement.where(audit_events.c.action.endswith(action_suffix))
        if release_id is not None:
            statement = statement.where(audit_events.c.release_id == release_id)
        with self.engine.connect() as conn:
            return [_event(row._mapping) for row in conn.execute(statement)]

    def errors_per_day(self, since: datetime, until: datetime) -> list[tuple[str, int]]:
        """Events whose result says something went wrong, per UTC day."""
        day = self._day().label("day")
        statement = (
            select(day, func.count())
            .where(
                audit_events.c.timestamp >= _utc(since),
                audit_events.c.timestamp < _utc(until),
                audit_events.c.result.in_(ERROR_RESULTS),
            )
            .group_by(day)
            .order_by(day)
        )
        with self.engine.connect() as conn:
            return [(str(d), int(c)) for d, c in conn.execute(statement)]

    def finished_releases(
        self, prefix: str, *, before: datetime | None = None, limit: int = 5
    ) -> list[AuditEvent]:
        """The newest `release.finished` events of releases whose id starts with `prefix`."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = (
            select(audit_events)
            .where(
                audit_events.c.action == "release.finished",
                audit_events.c.release_id.like(escaped + "%", escape="\\"),
            )
            .order_by(desc(audit_events.c.timestamp))
            .limit(limit)
        )
        if before is not None:
            statement = statement.where(audit_events.c.timestamp < _utc(before))
        with self.engine.connect() as conn:
            return [_event(row._mapping) for row in conn.execute(statement)]

    def write_guard_observations(self, rows: Iterable[dict[str, object]]) -> int:
        """Once per (release, run, stage, check): a retried retrospective adds nothing."""
        values = [
            {**r, "finished_at": _utc(r["finished_at"])}  # type: ignore[arg-type]
            for r in rows
        ]
        if not values:
            return 0
        statement = (
            insert_for(self.engine)(guard_observations)
            .values(values)
            .on_conflict_do_nothing(index_elements=["release_id", "run_id", "stage", "check_name"])
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount or 0

    def guard_rates(
        self, since: datetime, until: datetime
    ) -> list[tuple[str, int, int, int, float | None, float | None]]:
        """Per check: releases, samples, breaches, mean and max of what guards measured."""
        g = guard_observations.c
        samples = func.sum(g.samples)
        statement = (
            select(
                g.check_name,
                func.count(func.distinct(g.release_id)),
                samples,
                func.sum(g.breaches),
                func.sum(g.value_sum) / func.nullif(samples, 0),
                func.max(g.value_max),
            )
            .where(g.finished_at >= _utc(since), g.finished_at < _utc(until))
            .group_by(g.check_name)
            .order_by(g.check_name)
        )
        with self.engine.connect() as conn:
            return [
                (
                    str(name),
                    int(releases),
                    int(n or 0),
                    int(breaches or 0),
                    None if mean is None else float(mean),
                    None if peak is None else float(peak),
                )
                for name, releases, n, breaches, mean, peak in conn.execute(statement)
            ]

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


def _aware(value: datetime) -> datetime:
    """A timestamp read back from the database, in UTC (SQLite keeps no zone)."""
    if isinstance(value, str):  # SQLite returns computed columns (LAG) as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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

"""The audit activity on a real SQLite file: concurrent writers, retries, a failing store."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import OperationalError
from temporalio.testing import ActivityEnvironment

from activities.audit import MAX_BATCH_EVENTS, AuditActivities
from warden.models.audit import AuditBatch, AuditEvent, AuditQuery
from warden.stores.audit import AuditStore


def _event(release: str, n: int) -> AuditEvent:
    return AuditEvent(
        eventId=uuid.uuid5(uuid.NAMESPACE_URL, f"{release}/{n}").hex,
        userId="warden",
        action="stage.started",
        entity=f"release:{release}",
        result="started",
        timestamp=datetime.now(UTC),
        releaseId=release,
        traceId="trace",
    )


async def test_a_burst_of_releases_is_written_once_each_and_retries_add_nothing(
    tmp_path: Path,
) -> None:
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    activities = AuditActivities(store)
    env = ActivityEnvironment()
    batches = [AuditBatch(events=[_event(f"r{i}", n) for n in range(3)]) for i in range(400)]

    recorded = await asyncio.gather(*(env.run(activities.record_audit_events, b) for b in batches))
    assert recorded == [3] * 400
    # every batch again, as retried attempts would send them
    await asyncio.gather(*(env.run(activities.record_audit_events, b) for b in batches[:50]))

    rows = store.query(AuditQuery(limit=10_000))
    assert len(rows) == 1200
    assert len({r.eventId for r in rows}) == 1200
    assert store.count("r7") == 3
    assert 1200 > MAX_BATCH_EVENTS  # the burst needed more than one transaction


async def test_a_store_that_fails_fails_every_waiting_attempt(tmp_path: Path) -> None:
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    activities = AuditActivities(store)
    env = ActivityEnvironment()
    store.engine.dispose()
    (tmp_path / "audit.db").unlink()
    (tmp_path / "audit.db").mkdir()  # the database file is gone, a directory in its place

    results = await asyncio.gather(
        *(
            env.run(activities.record_audit_events, AuditBatch(events=[_event("r", n)]))
            for n in range(5)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, OperationalError) for r in results), results

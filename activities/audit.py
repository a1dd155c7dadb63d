"""Audit writes: a local activity keyed by event id, so a retry never writes a row twice."""

from __future__ import annotations

import asyncio

from temporalio import activity

from warden.audit import AuditStore
from warden.models.audit import AuditBatch


class AuditActivities:
    def __init__(self, store: AuditStore) -> None:
        self._store = store

    @activity.defn(name="record_audit_events")
    async def record_audit_events(self, batch: AuditBatch) -> int:
        return await asyncio.to_thread(self._store.write, batch.events)

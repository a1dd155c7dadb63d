"""Audit writes: a local activity keyed by event id, so a retry never writes a row twice.

Concurrent writes from many releases on one worker are committed together (group commit):
while one transaction is being written, the events that arrive queue up and go into the
next one. A burst of a thousand releases then costs a few transactions, not a thousand
fsyncs in a row, and no release's workflow task waits behind all the others.
"""

from __future__ import annotations

import asyncio
from collections import deque

from temporalio import activity

from warden.models.audit import AuditBatch, AuditEvent
from warden.stores.audit import AuditStore

#: Events per transaction at most (SQLite limits the parameters of one statement).
MAX_BATCH_EVENTS = 500


class AuditActivities:
    def __init__(self, store: AuditStore) -> None:
        self._store = store
        self._queue: deque[tuple[list[AuditEvent], asyncio.Future[int]]] = deque()
        self._writer: asyncio.Task[None] | None = None

    @activity.defn(name="record_audit_events")
    async def record_audit_events(self, batch: AuditBatch) -> int:
        """Store the batch's events (idempotent); returns how many events it recorded."""
        if not batch.events:
            return 0
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        # Retrieved here so that a failure nobody awaits any more (cancelled attempt) is not logged.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.append((list(batch.events), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        # A cancelled attempt leaves its events queued: they are written anyway, once.
        return await asyncio.shield(future)

    async def _write_queued(self) -> None:
        while self._queue:
            taken: list[tuple[list[AuditEvent], asyncio.Future[int]]] = []
            size = 0
            while self._queue and (not taken or size + len(self._queue[0][0]) <= MAX_BATCH_EVENTS):
                events, future = self._queue.popleft()
                taken.append((events, future))
                size += len(events)
            try:
                await asyncio.to_thread(
                    self._store.write, [e for events, _ in taken for e in events]
                )
            except Exception as exc:  # every caller's attempt fails and is retried by Temporal
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for events, future in taken:
                    if not future.done():
                        future.set_result(len(events))

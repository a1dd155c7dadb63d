"""Pieces every workflow uses: audit events and notices, both deterministic to schedule."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.audit import MAX_BATCH_EVENTS, AuditActivities
    from activities.notify import NoticeActivities
    from warden.models.audit import AuditBatch, AuditEvent
    from warden.models.notice import Notice
    from workflows import policies


#: Workflows that record this patch write their audit events in batches (`AuditJournal`).
AUDIT_JOURNAL_PATCH = "audit-journal"
ONE_MICROSECOND = timedelta(microseconds=1)


def audit_event(
    action: str,
    result: str,
    *,
    user: str,
    entity: str,
    release_id: str | None,
    trace_id: str | None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """One audit row. Its id comes from the workflow's deterministic uuid, so a retry or a
    replay writes the same row, never a second one."""
    return AuditEvent(
        eventId=str(workflow.uuid4()),
        userId=user,
        action=action,
        entity=entity,
        result=result,
        timestamp=workflow.now(),
        releaseId=release_id,
        traceId=trace_id,
        source="workflow",
        details=details or {},
    )


async def write_audit(events: list[AuditEvent]) -> None:
    """Write events with the audit local activity (retried until it succeeds)."""
    await workflow.execute_local_activity_method(
        AuditActivities.record_audit_events, AuditBatch(events=events), **policies.audit_options()
    )


class AuditJournal:
    """A workflow's audit events, written in order, one local activity per batch.

    `record` returns at once; a writer task takes every event recorded so far and writes them
    with one local activity, then the ones recorded meanwhile, and so on. The events of one
    step of the workflow (`stage.promoted`, then `stage.started` of the next stage, ...) cost
    one local activity and one workflow activation instead of one each. `flush` waits until
    everything recorded before it is written: the workflow calls it before it answers an
    update, before it changes or restores a flag and before it ends, so those never run ahead
    of the audit trail. A crash loses nothing: the events are rebuilt from history, with the
    same ids, and written again.
    """

    def __init__(self) -> None:
        self._pending: list[AuditEvent] = []
        self._recorded = 0
        self._written = 0
        self._writer: asyncio.Task[None] | None = None
        self._last: datetime | None = None

    def record(self, event: AuditEvent) -> None:
        # Events of one workflow task share the task's time; a microsecond apart, the trail
        # (ordered by time) keeps the order they happened in.
        if self._last is not None and event.timestamp <= self._last:
            event = event.model_copy(update={"timestamp": self._last + ONE_MICROSECOND})
        self._last = event.timestamp
        self._pending.append(event)
        self._recorded += 1
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def flush(self) -> None:
        target = self._recorded
        if self._written < target:
            await workflow.wait_condition(lambda: self._written >= target)

    async def _write(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_BATCH_EVENTS]
            del self._pending[: len(batch)]
            await write_audit(batch)
            self._written += len(batch)


async def send_notice(notice: Notice) -> str | None:
    """Best effort: returns a problem description instead of failing the workflow."""
    try:
        await workflow.execute_activity_method(
            NoticeActivities.send_notice, notice, **policies.notice_options()
        )
    except ActivityError as exc:
        return cause(exc)
    return None


def cause(exc: ActivityError) -> str:
    """The innermost readable message of an activity failure."""
    inner: BaseException | None = exc.cause
    while isinstance(inner, ActivityError):
        inner = inner.cause
    if isinstance(inner, ApplicationError):
        return inner.message
    return str(inner or exc)


def first_report(seen: set[str], refusal_id: str, limit: int) -> bool:
    """Whether a refusal reported through a `record_refusal` signal is to be recorded: the
    first report of its id, while fewer than `limit` have been (a client retrying its signal,
    or a flood of refused requests, adds nothing to the history)."""
    if refusal_id in seen or len(seen) >= limit:
        return False
    seen.add(refusal_id)
    return True


def require_payload(request: object, model: type[Any], name: str) -> None:
    """Refuse an update whose payload did not decode to its model (e.g. sent as binary/null).

    Such a payload skips the pydantic converter and would otherwise reach the handler as
    None or bytes, fail the workflow task on every retry and leave the workflow stuck.
    """
    if not isinstance(request, model):
        raise ApplicationError(
            f"{name} needs a JSON object ({model.__name__}); got {type(request).__name__}",
            type="BadPayload",
            non_retryable=True,
        )

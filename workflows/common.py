"""Pieces every workflow uses: audit events and notices, both deterministic to schedule."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities
    from activities.notify import NoticeActivities
    from warden.models.audit import AuditBatch, AuditEvent
    from warden.models.notice import Notice
    from workflows import policies


async def record_audit(
    action: str,
    result: str,
    *,
    user: str,
    entity: str,
    release_id: str | None,
    trace_id: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """One audit row, written by a local activity; the event id comes from the workflow's
    deterministic uuid, so a retry or a replay writes the same row, never a second one."""
    event = AuditEvent(
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
    await workflow.execute_local_activity_method(
        AuditActivities.record_audit_events, AuditBatch(events=[event]), **policies.audit_options()
    )


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


def require_payload(request: object, model: type[Any], name: str) -> None:
    """Refuse an update whose payload did not decode to its model (e.g. sent as binary/null).

    Such a payload skips the pydantic converter and would otherwise reach the handler as
    None or bytes, fail the workflow task on every retry and leave the workflow stuck.
    """
    if not isinstance(request, model):
        raise ApplicationError(
            f"{name} needs a JSON object ({model.__name__}); got {type(request).__name__}",
            type="BadPayload",
        )

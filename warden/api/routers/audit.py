"""`/audit/events`: accept audit events from other systems, query them, export them as CSV.

An event posted here keeps the body's `userId` (a system may post on behalf of a user); the
authenticated caller who posted it is recorded in `details.postedBy`, which the body cannot
set. `eventId` is the idempotency key: a new id answers 201, an id already stored answers 200
with the stored event and writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from warden.api.deps import CanReadAudit, CanWriteAudit
from warden.api.errors import ApiError
from warden.api.models import ID_PATTERN, AuditEventPost
from warden.api.responses import errors
from warden.api.state import ApiState, api_state
from warden.api.strict import IsoDatetime
from warden.models.audit import AuditBatch, AuditEvent, AuditQuery
from warden.stores.audit import AuditStore, audit_events, to_csv
from warden.stores.audit import _event as row_to_event

router = APIRouter(prefix="/audit", tags=["audit"])

MAX_LIMIT = 100_000


class CsvResponse(Response):
    media_type = "text/csv; charset=utf-8"


def audit_filters(
    releaseId: Annotated[str | None, Query(min_length=1, max_length=300)] = None,
    userId: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    since: Annotated[
        IsoDatetime | None,
        Query(description="ISO 8601, e.g. 2026-01-31T12:00:00Z (no zone = UTC)."),
    ] = None,
    until: Annotated[IsoDatetime | None, Query(description="ISO 8601; inclusive.")] = None,
    traceId: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="At most this many events, oldest first.")
    ] = 1000,
) -> AuditQuery:
    return AuditQuery(
        releaseId=releaseId,
        userId=userId,
        action=action,
        since=since,
        until=until,
        traceId=traceId,
        limit=limit,
    )


Filters = Annotated[AuditQuery, Depends(audit_filters)]


async def _query(api: ApiState, query: AuditQuery) -> list[AuditEvent]:
    try:
        return await run_in_threadpool(lambda: api.audit.query(query))
    except SQLAlchemyError:
        raise ApiError(
            503, "AuditStoreUnavailable", "the audit store cannot be read; try again"
        ) from None


def _stored(store: AuditStore, event_id: str) -> AuditEvent | None:
    """The stored event with this id (AuditQuery has no id filter; the table is the store's own)."""
    with store.engine.connect() as conn:
        row = conn.execute(select(audit_events).where(audit_events.c.event_id == event_id)).first()
    return None if row is None else row_to_event(row._mapping)


@router.post(
    "/events",
    status_code=201,
    response_model=AuditEvent,
    summary="Accept an audit event",
    responses={
        200: {
            "model": AuditEvent,
            "description": "An event with this eventId is already stored; nothing was written.",
        },
        **errors(401, 403, 422, 503),
    },
)
async def post_audit_event(
    request: Request, response: Response, body: AuditEventPost, principal: CanWriteAudit
) -> AuditEvent:
    """201 with the stored event when it is new; 200 with the stored event when `eventId` was seen before."""
    api = api_state(request)
    details = dict(body.details)
    details["postedBy"] = principal.name  # who posted it, whatever the body says
    details["requestId"] = request.state.request_id
    if principal.dev_identity:
        details["devIdentity"] = True
    event = AuditEvent(
        eventId=str(body.eventId or uuid.uuid4()),
        userId=body.userId,
        action=body.action,
        entity=body.entity,
        result=body.result,
        timestamp=body.timestamp or datetime.now(UTC),
        releaseId=body.releaseId,
        traceId=body.traceId or request.state.trace_id,
        source="api",
        details=details,
    )
    try:
        written = await run_in_threadpool(lambda: api.audit.write([event]))
        stored = (
            event if written else await run_in_threadpool(lambda: _stored(api.audit, event.eventId))
        )
    except SQLAlchemyError:
        raise ApiError(
            503, "AuditStoreUnavailable", "the audit store cannot be written; try again"
        ) from None
    api.metrics.audit_events.labels("created" if written else "duplicate").inc()
    if not written:
        response.status_code = 200
    return stored or event


@router.get(
    "/events",
    response_model=AuditBatch,
    summary="Query audit events",
    responses=errors(401, 403, 422, 503),
)
async def get_audit_events(request: Request, query: Filters, principal: CanReadAudit) -> AuditBatch:
    """Filter by release, user, action, trace id and time range; oldest first."""
    return AuditBatch(events=await _query(api_state(request), query))


@router.get(
    "/events.csv",
    # A plain Response class keeps the error responses documented as JSON, the export as CSV.
    response_class=Response,
    summary="Export audit events as CSV",
    responses={
        200: {
            "description": "CSV with a header row: eventId, timestamp, userId, action, entity, "
            "result, releaseId, traceId, source, details (JSON).",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **errors(401, 403, 422, 503),
    },
)
async def export_audit_events(
    request: Request,
    principal: CanReadAudit,
    releaseId: Annotated[str | None, Query(min_length=1, max_length=300)] = None,
    userId: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    since: Annotated[IsoDatetime | None, Query()] = None,
    until: Annotated[IsoDatetime | None, Query()] = None,
    traceId: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT,
) -> CsvResponse:
    """The same filters as GET /audit/events; the default limit covers a whole export."""
    query = AuditQuery(
        releaseId=releaseId,
        userId=userId,
        action=action,
        since=since,
        until=until,
        traceId=traceId,
        limit=limit,
    )
    events = await _query(api_state(request), query)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return CsvResponse(
        to_csv(events),
        headers={"Content-Disposition": f'attachment; filename="warden-audit-{stamp}.csv"'},
    )

"""`/audit/events`: accept audit events from other systems, query them, export them as CSV.

An event posted here keeps the body's `userId` (a system may post on behalf of a user); the
authenticated caller who posted it is recorded in `details.postedBy`, which the body cannot
set. `eventId` is the idempotency key: a new id answers 201, an id already stored answers 200
with the stored event and writes nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BeforeValidator, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from warden.api.deps import AuditTrail, CanReadAudit, CanWriteAudit
from warden.api.models import ID_PATTERN, AuditEventPost
from warden.api.responses import errors
from warden.api.state import api_state
from warden.models.audit import TIME_FORMS, AuditBatch, AuditEvent, AuditQuery, parse_time

router = APIRouter(prefix="/audit", tags=["audit"])

MAX_LIMIT = 100_000


class CsvResponse(Response):
    media_type = "text/csv; charset=utf-8"


#: `?since=2026-11-01T13:00+01:00` written without encoding `+` as %2B arrives with a space.
_PLUS_AS_SPACE = re.compile(r"(\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?) (\d{2}(?::?\d{2})?)$")


def _time_value(end_of_day: bool) -> Callable[[object], datetime]:
    def read(value: object) -> datetime:
        if isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise ValueError(f"use {TIME_FORMS}")
        value = _PLUS_AS_SPACE.sub(r"\1+\2", value.strip())
        return parse_time(value, end_of_day=end_of_day)  # the CLI's parser: the same forms

    return read


_TIME_SCHEMA = WithJsonSchema(
    {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}
)
#: A date (the start of that day), or a date and time; no zone = UTC.
Since = Annotated[datetime, BeforeValidator(_time_value(end_of_day=False)), _TIME_SCHEMA]
#: Inclusive; a date alone covers that whole day.
Until = Annotated[datetime, BeforeValidator(_time_value(end_of_day=True)), _TIME_SCHEMA]


def audit_filters(default_limit: int) -> Callable[..., AuditQuery]:
    """The query parameters every audit read takes; `limit` defaults to `default_limit`."""

    def filters(
        releaseId: Annotated[str | None, Query(min_length=1, max_length=300)] = None,
        userId: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        action: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
        since: Annotated[
            Since | None,
            Query(
                description="From this time: a date (from its start) or a date and time, e.g. "
                "2026-11-01, 2026-11-01T12:00:00Z, 2026-11-01 13:00+01:00 (no zone = UTC)."
            ),
        ] = None,
        until: Annotated[
            Until | None,
            Query(
                description="Up to this time, inclusive: a date (to its end) or a date and time, "
                "as for since."
            ),
        ] = None,
        traceId: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="At most this many events, oldest first.")
        ] = default_limit,
        newest: Annotated[
            bool,
            Query(
                description="The newest `limit` events (still oldest first) instead of the oldest."
            ),
        ] = False,
    ) -> AuditQuery:
        return AuditQuery(
            releaseId=releaseId,
            userId=userId,
            action=action,
            since=since,
            until=until,
            traceId=traceId,
            limit=limit,
            newest=newest,
        )

    return filters


Filters = Annotated[AuditQuery, Depends(audit_filters(1000))]
#: An export's default limit covers a whole export.
ExportFilters = Annotated[AuditQuery, Depends(audit_filters(MAX_LIMIT))]


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
    request: Request,
    response: Response,
    body: AuditEventPost,
    principal: CanWriteAudit,
    audit: AuditTrail,
) -> AuditEvent:
    """201 with the stored event when it is new; 200 with the stored event when `eventId` was seen before."""
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
    stored, written = await run_in_threadpool(audit.accept, event)
    api_state(request).metrics.audit_events.labels("created" if written else "duplicate").inc()
    if not written:
        response.status_code = 200
    return stored


@router.get(
    "/events",
    response_model=AuditBatch,
    summary="Query audit events",
    responses=errors(401, 403, 422, 503),
)
async def get_audit_events(
    query: Filters, principal: CanReadAudit, audit: AuditTrail
) -> AuditBatch:
    """Filter by release, user, action, trace id and time range; oldest first."""
    return AuditBatch(events=await run_in_threadpool(audit.query, query))


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
    query: ExportFilters, principal: CanReadAudit, audit: AuditTrail
) -> CsvResponse:
    """The same filters as GET /audit/events; the default limit covers a whole export."""
    text, _ = await run_in_threadpool(lambda: audit.export(query, csv=True))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return CsvResponse(
        text,
        headers={"Content-Disposition": f'attachment; filename="warden-audit-{stamp}.csv"'},
    )

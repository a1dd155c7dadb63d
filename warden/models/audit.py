"""Audit events: every action on a release, an access change or a flag is one of these."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field, field_validator

from warden.models.common import Record, StrictModel


class AuditEventCreate(StrictModel):
    """An audit event as other systems send it to `POST /audit/events`."""

    eventId: UUID | None = Field(
        default=None, description="Idempotency key; generated when absent."
    )
    userId: str = Field(min_length=1, max_length=200)
    action: str = Field(min_length=1, max_length=100, pattern=r"^[a-zA-Z0-9_.:\-]+$")
    entity: str = Field(min_length=1, max_length=500)
    result: str = Field(min_length=1, max_length=50, pattern=r"^[a-zA-Z0-9_.\-]+$")
    timestamp: datetime | None = None
    releaseId: str | None = Field(default=None, max_length=300)
    traceId: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamp needs a timezone (e.g. 2026-01-31T12:00:00Z)")
        return value


class AuditEvent(Record):
    """A stored audit event."""

    eventId: str
    userId: str
    action: str
    entity: str
    result: str
    timestamp: datetime
    releaseId: str | None = None
    traceId: str | None = None
    source: str = "workflow"
    details: dict[str, Any] = Field(default_factory=dict)


class AuditQuery(Record):
    releaseId: str | None = None
    userId: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    traceId: str | None = None
    limit: int = 1000


class AuditBatch(Record):
    events: list[AuditEvent]

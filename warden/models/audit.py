"""Audit events: every action on a release, an access change or a flag is one of these."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
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
    #: The newest `limit` events (still returned oldest first) instead of the oldest.
    newest: bool = False


#: The time forms both faces accept for `since`/`until`: a date, or a date and a time (minutes,
#: seconds, fractions), `T` or a space between them, with or without a zone (`Z`, `+01:00`,
#: `+0100`, ` UTC`). `warden` prints times as `2026-11-01 14:30:00 UTC`, which reads back.
TIME_FORMS = "2026-11-01, 2026-11-01T14:30, 2026-11-01 14:30:00, 2026-11-01T14:30:00Z or +01:00"
_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<fraction>\d{1,9}))?"
    r"(?P<zone>[Zz]| ?UTC|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)


def parse_time(text: str, *, end_of_day: bool = False) -> datetime:
    """A `since`/`until` value as an aware UTC time; no zone means UTC.

    A date alone means the start of that day, or with `end_of_day` (for `until`, which is
    inclusive) its last microsecond, so `--until 2026-11-01` covers all of November 1st.
    Raises ValueError with the forms it accepts."""
    match = _TIME.fullmatch(text.strip())
    problem = f"{text.strip()[:60]!r} is not a date or time; use {TIME_FORMS} (no zone = UTC)"
    if match is None:
        raise ValueError(problem)
    try:
        if match["time"] is None:
            day = datetime.fromisoformat(match["date"])
            return datetime.combine(day.date(), time.max if end_of_day else time.min, UTC)
        zone = match["zone"] or ""
        zone = "+00:00" if zone.strip().upper() in ("Z", "UTC") else zone
        fraction = f".{match['fraction'][:6]}" if match["fraction"] else ""
        value = datetime.fromisoformat(f"{match['date']}T{match['time']}{fraction}{zone}")
    except ValueError:  # 2026-02-30, 25:00
        raise ValueError(problem) from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (
        OverflowError
    ):  # 0001-01-01T00:00+05:00 is before the calendar starts: as early as it gets
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


class AuditBatch(Record):
    events: list[AuditEvent]

"""`warden replay` and `GET /traces/{trace_id}`: replayed histories and the chain of events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from warden.models.common import Record

#: Where a line of the chain comes from.
Source = Literal["temporal", "audit", "flag", "alert", "notice"]


class ChainLine(Record):
    """One thing that happened, from a workflow's history or from the audit trail."""

    at: datetime
    source: Source
    workflow_id: str | None = None
    event_id: int | None = Field(default=None, description="The history event, for Temporal lines.")
    kind: str = Field(description="e.g. stage, activity, update, timer, or an audit action.")
    summary: str
    user: str | None = None
    request_id: str | None = None
    trace_id: str | None = None


class ReplayedWorkflow(Record):
    """One history replayed against the worker's current workflow code."""

    workflow_id: str
    run_id: str
    workflow_type: str
    events: int
    deterministic: bool
    #: The first event that diverged from what the current code does, when it is not.
    event_id: int | None = None
    event_type: str | None = None
    problem: str | None = None


class ReplayReport(Record):
    """What `warden replay` prints, and `GET /traces/{trace_id}` answers."""

    release_id: str | None = None
    trace_id: str | None = None
    #: The OpenTelemetry trace id (32 hex) the workflows carry in `WardenTraceId`.
    otel_trace_id: str | None = None
    deterministic: bool
    workflows: list[ReplayedWorkflow] = Field(default_factory=list)
    chain: list[ChainLine] = Field(default_factory=list)

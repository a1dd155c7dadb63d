"""`GET /traces/{trace_id}`: the chain of events of one trace id, as `warden replay --trace-id`.

Every release, kill switch and access change started with the trace id (found through their
`WardenTraceId` search attribute), replayed against the API's workflow code, and their Temporal
events, audit rows, flag changes, alerts and notices in time order. Reading it takes the
audit-reading permission, as the audit endpoints do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from warden.api.deps import CanReadAudit, Replays
from warden.api.models import ID_PATTERN
from warden.api.responses import errors
from warden.models.replay import ReplayReport

router = APIRouter(prefix="/traces", tags=["traces"])


@router.get(
    "/{trace_id}",
    response_model=ReplayReport,
    summary="The chain of events of one trace id",
    responses=errors(
        401,
        403,
        404,
        422,
        503,
        not_found="No release, kill switch or access change carries this trace id.",
    ),
)
async def get_trace(
    trace_id: Annotated[
        str,
        Path(
            pattern=ID_PATTERN,
            description="The trace id the start request carried (X-Trace-Id, --trace-id), or "
            "its 32-hex OpenTelemetry trace id (a traceparent's).",
        ),
    ],
    _principal: CanReadAudit,
    replays: Replays,
    replay: Annotated[
        bool,
        Query(description="Replay each history against the current workflow code too."),
    ] = True,
) -> ReplayReport:
    return await replays.trace(trace_id, replay=replay)

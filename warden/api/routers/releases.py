"""`/releases`: start, list, look at, decide on and control releases, all through ReleaseService.

The acting user is always the authenticated caller: the API passes the caller's name to the
workflow, whose update validators enforce membership, separation of duties and deadlines.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response

from warden.api.deps import (
    CanAbort,
    CanDecide,
    CanPause,
    CanResume,
    CanStartReleases,
    CanViewReleases,
    Releases,
)
from warden.api.models import (
    RELEASE_ID_PATTERN,
    AbortCreate,
    ControlCreate,
    DecisionCreate,
    ReleaseCreate,
    ReleaseList,
)
from warden.api.responses import errors
from warden.api.state import ApiState, api_state
from warden.models.plan import ReleasePlan
from warden.models.release import (
    AbortRequest,
    ControlOutcome,
    ControlRequest,
    DecisionOutcome,
    DecisionRequest,
    ReleaseStarted,
    ReleaseStatus,
)
from warden.services.releases import ReleaseService, RequestRefused
from warden.stores.governance import Principal

router = APIRouter(prefix="/releases", tags=["releases"])

ReleaseId = Annotated[
    str,
    Path(
        pattern=RELEASE_ID_PATTERN,
        description="The release's workflow id, `release-<service>-<version>`.",
    ),
]
ExecutionStatus = Literal["running", "completed", "failed", "canceled", "terminated", "timed_out"]
_VISIBILITY_STATUS = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
}


async def start_release(
    request: Request,
    response: Response,
    principal: Principal,
    releases: ReleaseService,
    plan: ReleasePlan,
    *,
    trace_id: str | None = None,
    rerun: bool = False,
) -> ReleaseStarted:
    """Start a release as `principal`; shared by POST /releases and POST /dev/seed."""
    api = api_state(request)
    if trace_id:
        request.state.trace_id = trace_id  # the release's trace id is the one echoed
    started = await releases.start(
        plan,
        principal.name,
        trace_id=request.state.trace_id,
        request_id=request.state.request_id,
        dev_identity=principal.dev_identity,
        rerun=rerun,
    )
    api.metrics.releases_started.inc()
    response.headers["Location"] = f"/releases/{started.release_id}"
    return started


@router.post(
    "",
    status_code=201,
    response_model=ReleaseStarted,
    summary="Start a release",
    responses=errors(
        401, 403, 409, 422, 503, conflict="A release with this id is running or already ran."
    ),
)
async def create_release(
    request: Request,
    response: Response,
    body: ReleaseCreate,
    principal: CanStartReleases,
    releases: Releases,
) -> ReleaseStarted:
    """Start the release a plan describes; its id is `release-<service>-<version>`.

    The caller is recorded as the one who started it (and so cannot approve it)."""
    return await start_release(
        request,
        response,
        principal,
        releases,
        body.plan,
        trace_id=body.trace_id,
        rerun=body.rerun,
    )


@router.get(
    "", response_model=ReleaseList, summary="List releases", responses=errors(401, 403, 422, 503)
)
async def list_releases(
    principal: CanViewReleases,
    releases: Releases,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    status: Annotated[
        ExecutionStatus | None, Query(description="Workflow execution status.")
    ] = None,
) -> ReleaseList:
    """The most recent releases first (state and stage as the workflow last published them)."""
    query = f"ExecutionStatus = '{_VISIBILITY_STATUS[status]}'" if status else None
    return ReleaseList(releases=await releases.list(limit=limit, query=query))


@router.get(
    "/{release_id}",
    response_model=ReleaseStatus,
    summary="A release's full status",
    responses=errors(401, 403, 404, 422, 503),
)
async def get_release(
    release_id: ReleaseId, principal: CanViewReleases, releases: Releases
) -> ReleaseStatus:
    """Everything an approver looks at before deciding: every stage's checklist items with their
    evidence, contract results, metric measurements, guard reports, flag steps, sign-off decisions,
    flag snapshots, alerts, rollback and timeline."""
    return await releases.status(release_id)


async def _decide(
    request: Request,
    releases: ReleaseService,
    release_id: str,
    principal: Principal,
    body: DecisionCreate,
    approve: bool,
) -> DecisionOutcome:
    api: ApiState = api_state(request)
    decision = "approve" if approve else "reject"
    decision_request = DecisionRequest(
        stage=body.stage,
        user=principal.name,
        comment=body.comment,
        dev_identity=principal.dev_identity,
        request_id=request.state.request_id,
    )
    try:
        outcome = await (releases.approve if approve else releases.reject)(
            release_id, decision_request
        )
    except RequestRefused:
        api.metrics.gate_decisions.labels(decision, "refused").inc()
        raise
    api.metrics.gate_decisions.labels(decision, "counted" if outcome.counted else "duplicate").inc()
    if approve and outcome.counted:
        api.metrics.approvals.labels(outcome.stage).inc()
    return outcome


_DECISION_REFUSED = (
    "Refused by the release: SelfApproval, NotAMember, NotAwaitingApproval, UnknownStage, "
    "DeadlinePassed, CommentRequired or ReleaseEnded (the `type`); the refusal is audited."
)


@router.post(
    "/{release_id}/approve",
    response_model=DecisionOutcome,
    summary="Approve a stage's sign-off",
    responses=errors(401, 403, 404, 409, 422, 503, conflict=_DECISION_REFUSED),
)
async def approve_release(
    request: Request,
    release_id: ReleaseId,
    body: DecisionCreate,
    principal: CanDecide,
    releases: Releases,
) -> DecisionOutcome:
    """Approve as the authenticated caller. Whoever started the release cannot approve it."""
    return await _decide(request, releases, release_id, principal, body, approve=True)


@router.post(
    "/{release_id}/reject",
    response_model=DecisionOutcome,
    summary="Reject a stage's sign-off",
    responses=errors(401, 403, 404, 409, 422, 503, conflict=_DECISION_REFUSED),
)
async def reject_release(
    request: Request,
    release_id: ReleaseId,
    body: DecisionCreate,
    principal: CanDecide,
    releases: Releases,
) -> DecisionOutcome:
    """Reject as the authenticated caller; a rejection needs a comment."""
    return await _decide(request, releases, release_id, principal, body, approve=False)


def _acting(request: Request, principal: Principal, reason: str) -> dict[str, Any]:
    """Who asks, why, and the request id, as every control request carries them."""
    return {
        "user": principal.name,
        "reason": reason,
        "dev_identity": principal.dev_identity,
        "request_id": request.state.request_id,
    }


_CONTROL_REFUSED = "Refused by the release: AlreadyPaused, NotPaused, AlreadyAborting, RollingBack or ReleaseEnded."


@router.post(
    "/{release_id}/pause",
    response_model=ControlOutcome,
    summary="Pause a release",
    responses=errors(401, 403, 404, 409, 422, 503, conflict=_CONTROL_REFUSED),
)
async def pause_release(
    request: Request,
    release_id: ReleaseId,
    principal: CanPause,
    releases: Releases,
    body: Annotated[ControlCreate | None, Body()] = None,
) -> ControlOutcome:
    """The release stops before its next step; guards keep watching."""
    return await releases.pause(
        release_id, ControlRequest(**_acting(request, principal, body.reason if body else ""))
    )


@router.post(
    "/{release_id}/resume",
    response_model=ControlOutcome,
    summary="Resume a paused release",
    responses=errors(401, 403, 404, 409, 422, 503, conflict=_CONTROL_REFUSED),
)
async def resume_release(
    request: Request,
    release_id: ReleaseId,
    principal: CanResume,
    releases: Releases,
    body: Annotated[ControlCreate | None, Body()] = None,
) -> ControlOutcome:
    return await releases.resume(
        release_id, ControlRequest(**_acting(request, principal, body.reason if body else ""))
    )


@router.post(
    "/{release_id}/abort",
    response_model=ControlOutcome,
    summary="Abort a release",
    responses=errors(401, 403, 404, 409, 422, 503, conflict=_CONTROL_REFUSED),
)
async def abort_release(
    request: Request,
    release_id: ReleaseId,
    body: AbortCreate,
    principal: CanAbort,
    releases: Releases,
) -> ControlOutcome:
    """The release stops and restores every flag it changed, exactly as captured."""
    return await releases.abort(
        release_id, AbortRequest(**_acting(request, principal, body.reason))
    )

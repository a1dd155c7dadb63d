"""`/access/changes` and `/governance`: roles change, and the governance file is signed off, only
when the access committee approves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from warden.api.deps import (
    Access,
    CanDecideAccess,
    CanRequestAccess,
    CanViewAccess,
    CanViewGovernance,
    Governance,
)
from warden.api.models import (
    RELEASE_ID_PATTERN,
    AccessChangeCreate,
    AccessChangeCreated,
    AccessChangeList,
    AccessDecisionCreate,
    SignoffCreate,
)
from warden.api.responses import errors
from warden.models.governance import (
    AccessChangeRequest,
    AccessChangeStatus,
    AccessDecision,
    AccessDecisionOutcome,
)
from warden.services.governance import GovernanceView
from warden.stores.governance import Principal

router = APIRouter(tags=["access"])

ChangeId = Annotated[str, Path(pattern=RELEASE_ID_PATTERN, description="The access change's id.")]
_REFUSED = (
    "Refused by the change: SelfApproval, NotAMember, NotAwaitingApproval, AlreadyDecided, "
    "DeadlinePassed or CommentRequired (the `type`); the refusal is audited."
)


async def _request(
    response: Response, access: Access, change: AccessChangeRequest
) -> AccessChangeCreated:
    change_id = await access.request(change)
    response.headers["Location"] = f"/access/changes/{change_id}"
    return AccessChangeCreated(change_id=change_id)


@router.post(
    "/access/changes",
    status_code=201,
    response_model=AccessChangeCreated,
    summary="Ask for a role to be granted or revoked",
    responses=errors(401, 403, 422, 503),
)
async def request_access_change(
    request: Request,
    response: Response,
    body: AccessChangeCreate,
    principal: CanRequestAccess,
    access: Access,
) -> AccessChangeCreated:
    """The change waits for the access committee's quorum; the caller is who asked."""
    change = AccessChangeRequest(
        kind=body.kind,
        user=body.user,
        role=body.role,
        reason=body.reason,
        requested_by=principal.name,
        trace_id=request.state.trace_id,
        dev_identity=principal.dev_identity,
    )
    return await _request(response, access, change)


@router.get(
    "/access/changes",
    response_model=AccessChangeList,
    summary="List access changes",
    responses=errors(401, 403, 422, 503),
)
async def list_access_changes(
    principal: CanViewAccess,
    access: Access,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AccessChangeList:
    return AccessChangeList(changes=await access.list(limit=limit))


@router.get(
    "/access/changes/{change_id}",
    response_model=AccessChangeStatus,
    summary="One access change",
    responses=errors(401, 403, 404, 422, 503),
)
async def get_access_change(
    change_id: ChangeId, principal: CanViewAccess, access: Access
) -> AccessChangeStatus:
    return await access.status(change_id)


async def _decide(
    access: Access, change_id: str, principal: Principal, body: AccessDecisionCreate, approve: bool
) -> AccessDecisionOutcome:
    decision = AccessDecision(
        user=principal.name, comment=body.comment, dev_identity=principal.dev_identity
    )
    return await access.decide(change_id, decision, approve)


@router.post(
    "/access/changes/{change_id}/approve",
    response_model=AccessDecisionOutcome,
    summary="Approve an access change",
    responses=errors(401, 403, 404, 409, 422, 503, conflict=_REFUSED),
)
async def approve_access_change(
    change_id: ChangeId, body: AccessDecisionCreate, principal: CanDecideAccess, access: Access
) -> AccessDecisionOutcome:
    """As the caller: not the requester, nor the person whose access it changes."""
    return await _decide(access, change_id, principal, body, approve=True)


@router.post(
    "/access/changes/{change_id}/reject",
    response_model=AccessDecisionOutcome,
    summary="Reject an access change",
    responses=errors(401, 403, 404, 409, 422, 503, conflict=_REFUSED),
)
async def reject_access_change(
    change_id: ChangeId, body: AccessDecisionCreate, principal: CanDecideAccess, access: Access
) -> AccessDecisionOutcome:
    """As the caller; a rejection needs a comment, and nothing is changed."""
    return await _decide(access, change_id, principal, body, approve=False)


@router.get(
    "/governance",
    response_model=GovernanceView,
    summary="The governance file: version, sign-off, effective roles",
    responses=errors(401, 403, 503),
)
async def show_governance(principal: CanViewGovernance, governance: Governance) -> GovernanceView:
    return governance.show()


@router.post(
    "/governance/signoff",
    status_code=201,
    response_model=AccessChangeCreated,
    summary="Ask for the governance file's version to be signed off",
    responses=errors(401, 403, 422, 503),
)
async def request_signoff(
    request: Request,
    response: Response,
    body: SignoffCreate,
    principal: CanRequestAccess,
    access: Access,
) -> AccessChangeCreated:
    change = AccessChangeRequest(
        kind="config-signoff",
        reason=body.reason,
        requested_by=principal.name,
        trace_id=request.state.trace_id,
        dev_identity=principal.dev_identity,
    )
    return await _request(response, access, change)

"""`/whoami`: the caller as the API sees them (the CLI asks before it acts through the API)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from warden.api.deps import Caller
from warden.api.models import WhoAmI
from warden.api.responses import errors
from warden.api.state import api_state

router = APIRouter(tags=["identity"])


@router.get(
    "/whoami",
    response_model=WhoAmI,
    summary="Who the token (or dev name) is",
    responses=errors(401, 403, 503),
)
async def whoami(request: Request, principal: Caller) -> WhoAmI:
    """The token's user and effective roles; with `X-Warden-As`, refused (401, audited) unless
    that is the token's own user."""
    verified = api_state(request).auth.identity.verified
    return WhoAmI(
        user=principal.name,
        roles=sorted(principal.roles),
        dev_identity=principal.dev_identity,
        mode="verified" if verified else "dev",
    )

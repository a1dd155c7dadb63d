"""`/flags`: read flags where the workers are, and the operator's audited kill switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import StringConstraints

from warden.api.deps import CanChangeFlags, CanViewFlags, Flags
from warden.api.models import FlagChangeCreate, FlagList
from warden.api.responses import errors
from warden.models.flags import FLAG_KEY_PATTERN, FlagOperation, KillSwitchOutcome
from warden.models.plan import NAME_PATTERN

router = APIRouter(prefix="/flags", tags=["flags"])

#: Environment names become flag file names: plain names only, never a path.
Environment = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
FlagKey = Annotated[str, StringConstraints(pattern=FLAG_KEY_PATTERN)]


@router.get("", response_model=FlagList, summary="Read flags", responses=errors(401, 403, 422, 503))
async def read_flags(
    principal: CanViewFlags,
    flags: Flags,
    env: Annotated[
        list[Environment] | None,
        Query(description="Environment(s); default every environment there are flags for."),
    ] = None,
    flag: Annotated[list[FlagKey] | None, Query(description="Only these flags.")] = None,
) -> FlagList:
    """The flags' current state in each environment (default: every environment there are flags
    for), read where this API reaches the flag backend, else where the workers run."""
    return FlagList(flags=(await flags.read(env or [], flag or [])).states)


@router.post(
    "/{environment}/{flag}",
    response_model=KillSwitchOutcome,
    summary="The kill switch: set a flag now",
    responses=errors(401, 403, 422, 503),
)
async def change_flag(
    request: Request,
    environment: Annotated[str, Path(pattern=NAME_PATTERN)],
    flag: Annotated[str, Path(pattern=FLAG_KEY_PATTERN)],
    body: FlagChangeCreate,
    principal: CanChangeFlags,
    flags: Flags,
) -> KillSwitchOutcome:
    """Audited as the caller (`killswitch.*`); also names running releases whose next step or
    rollback may change the flag again."""
    return await flags.kill_switch(
        FlagOperation(
            flag=flag,
            environment=environment,
            percent=body.percent,
            user=principal.name,
            reason=body.reason,
            trace_id=request.state.trace_id,
            dev_identity=principal.dev_identity,
        )
    )

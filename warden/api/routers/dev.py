"""Dev endpoints (`/dev/...`): only behind WARDEN_DEV_ENDPOINTS and the same whitelists as ops.

POST /dev/seed   start the sample support-desk release (examples/plans/support-desk.yaml)
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import APIRouter, Body, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from warden.api.deps import Releases, gate, ops_call
from warden.api.models import SeedCreate
from warden.api.responses import errors
from warden.api.routers.releases import start_release
from warden.api.state import api_state
from warden.models.plan import PlanError, ReleasePlan, expand_env, parse_plan
from warden.models.release import ReleaseStarted
from warden.services.flags import init_flag_files
from warden.settings import Settings
from warden.stores.governance import Principal

router = APIRouter(prefix="/dev", tags=["dev"])

#: Beside the `warden` package, as `warden demo` finds it (editable checkout or installed wheel).
SAMPLE_PLAN = Path(__file__).resolve().parents[3] / "examples" / "plans" / "support-desk.yaml"
SeedCaller = Annotated[Principal, Depends(gate("dev", "seed", "release.start"))]


def sample_plan(body: SeedCreate) -> ReleasePlan:
    """The sample plan (its `${SUPPORT_DESK_*}` defaults from the environment), with the body's
    version and URL set in the parsed document, never spliced into the YAML text."""
    source = "examples/plans/support-desk.yaml"
    text, problems = expand_env(SAMPLE_PLAN.read_text(encoding="utf-8"), os.environ)
    if problems:
        raise PlanError(source, problems)
    data = yaml.safe_load(text)
    data["version"] = body.version or "0.0.0-seed." + datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    if body.base_url:
        for stage in data["stages"]:
            stage["base_url"] = body.base_url
    return parse_plan(data, source)


def create_missing_flag_files(settings: Settings, plan: ReleasePlan) -> list[str]:
    """flagd-file only: a flag file per environment, the plan's flags off; existing files are kept."""
    if settings.flag_backend != "flagd-file":
        return []
    made = init_flag_files(settings, plan.environments(), dict.fromkeys(plan.flags, 0))
    return [env for env, (_, created) in zip(plan.environments(), made, strict=True) if created]


@router.post(
    "/seed",
    status_code=201,
    response_model=ReleaseStarted,
    summary="Start the sample support-desk release",
    responses=errors(
        401, 403, 404, 409, 422, 503, not_found="Switched off (WARDEN_DEV_ENDPOINTS)."
    ),
)
async def seed(
    request: Request,
    response: Response,
    principal: SeedCaller,
    releases: Releases,
    body: Annotated[SeedCreate | None, Body()] = None,
) -> ReleaseStarted:
    """Starts examples/plans/support-desk.yaml as the caller, with a fresh version. Its stages
    point at the Support Desk URLs (`SUPPORT_DESK_*_URL`, as `warden demo --keep` serves them)
    or at `base_url`; missing flag files are created with the plan's flags off."""
    body = body or SeedCreate()
    api = api_state(request)
    async with ops_call(request, principal, "dev", "seed") as details:
        plan = sample_plan(body)
        created = (
            await run_in_threadpool(create_missing_flag_files, api.settings, plan)
            if body.create_flags
            else []
        )
        started = await start_release(request, response, principal, releases, plan)
        details.update(
            {"result": "started", "releaseId": started.release_id, "flagFilesCreated": created}
        )
    return started

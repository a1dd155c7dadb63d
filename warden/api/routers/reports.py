"""`/releases/{id}/reports/{kind}` and `/reports/governance-review`: every report, built now.

JSON by default (the report model; its schema is in this document), or `?format=md` / `html`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from warden.api.deps import CanReadAudit, CanViewReleases
from warden.api.models import RELEASE_ID_PATTERN
from warden.api.responses import errors
from warden.api.state import api_state
from warden.models.reports import (
    MONTH_PATTERN,
    GoNoGoReport,
    GovernanceReview,
    PilotHealthReport,
    ReleaseNotes,
    ReportKind,
    Retrospective,
)
from warden.services.reports import ReportService

router = APIRouter(tags=["reports"])

ReleaseKind = Literal["go-no-go", "pilot-health", "release-notes", "retrospective"]
Format = Literal["json", "md", "html"]


def _reports(request: Request) -> ReportService:
    api = api_state(request)
    return ReportService(api.temporal, api.audit)


Reports = Annotated[ReportService, Depends(_reports)]

_TEXT = {
    "text/markdown": {"schema": {"type": "string"}},
    "text/html": {"schema": {"type": "string"}},
}


def _answer(service: ReportService, report: Any, fmt: Format) -> Response:
    if fmt == "json":
        return JSONResponse(report.model_dump(mode="json"))
    text = service.render(report, fmt)
    if fmt == "html":
        return HTMLResponse(text)
    return PlainTextResponse(text, media_type="text/markdown")


@router.get(
    "/releases/{release_id}/reports/{kind}",
    response_model=GoNoGoReport | PilotHealthReport | ReleaseNotes | Retrospective,
    summary="A report of a release",
    responses={
        200: {"content": _TEXT, "description": "The report, in the format asked for."},
        **errors(401, 403, 404, 422, 503),
    },
)
async def release_report(
    principal: CanViewReleases,
    reports: Reports,
    release_id: Annotated[
        str, Path(pattern=RELEASE_ID_PATTERN, description="`release-<service>-<version>`.")
    ],
    kind: Annotated[ReleaseKind, Path(description="Which report.")],
    format: Annotated[Format, Query(description="json (default), md or html.")] = "json",
    stage: Annotated[
        str | None,
        Query(
            max_length=100,
            description="go-no-go: the stage (default the pilot); pilot-health: the pilot stage.",
        ),
    ] = None,
    day: Annotated[
        date | None, Query(alias="date", description="pilot-health: one UTC day (YYYY-MM-DD).")
    ] = None,
) -> Response:
    """Built now from the release's history, status and audit trail: the go/no-go with its
    readiness score, pilot health over a period, release notes, or the retrospective."""
    report = await reports.build(ReportKind(kind), release_id, stage=stage, day=day)
    return _answer(reports, report, format)


@router.get(
    "/reports/governance-review",
    response_model=GovernanceReview,
    summary="The governance review of a month",
    responses={
        200: {"content": _TEXT, "description": "The review, in the format asked for."},
        **errors(401, 403, 422, 503),
    },
)
async def governance_review(
    principal: CanReadAudit,
    reports: Reports,
    month: Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM (UTC).")],
    format: Annotated[Format, Query(description="json (default), md or html.")] = "json",
) -> Response:
    """Audit log counts by action, result and user, gaps of 5 minutes or more, permission
    changes, contract pass rate and the error rates guards saw, the governance file's sign-off."""
    review = await reports.governance_review(month)
    return _answer(reports, review, format)

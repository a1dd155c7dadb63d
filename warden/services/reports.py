"""Reports on demand, for `warden report` and `GET /releases/{id}/reports/{kind}`, and the
monthly governance review's schedule.

A report asked for is built now, by the same builder the worker's activities use, from the
release's history and status (through Temporal) and the audit store; the flags "now" of the
release notes are read where the workers run.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleSpec, ScheduleState

from activities.reports import (
    GOVERNANCE_REVIEW_WORKFLOW,
    GOVERNANCE_SCHEDULE_ID,
    ReportBuilder,
    upsert_schedule,
)
from activities.reports.render import render
from warden.errors import WardenError
from warden.models.flags import FlagState
from warden.models.reports import (
    MONTH_PATTERN,
    GoNoGoReport,
    GovernanceReview,
    GovernanceReviewInput,
    PilotHealthReport,
    ReleaseNotes,
    ReportKind,
    Retrospective,
)
from warden.runtime.client import TemporalLink
from warden.services.flags import FlagService
from warden.services.releases import ReleaseService
from warden.stores.audit import AuditStore

#: The monthly review runs on the 1st at 06:00 UTC and covers the month before.
DEFAULT_REVIEW_CRON = "0 6 1 * *"

ReleaseReport = GoNoGoReport | PilotHealthReport | ReleaseNotes | Retrospective


def check_month(month: str) -> str:
    if not re.fullmatch(MONTH_PATTERN, month):
        raise WardenError(f"month {month!r} is not YYYY-MM between 1900 and 2999 (e.g. 2026-11)")
    return month


def check_kind(kind: str) -> ReportKind:
    try:
        return ReportKind(kind)
    except ValueError:
        raise WardenError(
            f"unknown report {kind!r}; reports: {', '.join(k.value for k in ReportKind)}"
        ) from None


class ReportService:
    def __init__(self, temporal: TemporalLink, store: AuditStore) -> None:
        self.temporal = temporal
        self.settings = temporal.settings
        self.store = store
        self.releases = ReleaseService(temporal)
        self.flags = FlagService(temporal)

    async def _builder(self) -> ReportBuilder:
        return ReportBuilder(
            self.settings, await self.temporal.client(), self.store, self._read_flags
        )

    async def _read_flags(self, environments: list[str], flags: list[str]) -> list[FlagState]:
        return (await self.flags.read(environments, flags)).states

    async def build(
        self,
        kind: ReportKind,
        release_id: str,
        *,
        stage: str | None = None,
        day: date | None = None,
    ) -> ReleaseReport:
        """One release's report as it stands now; `day` (pilot health) is one UTC day."""
        if kind == ReportKind.GOVERNANCE_REVIEW:
            raise WardenError("the governance review is monthly: give a month, not a release")
        status = await self.releases.status(release_id)  # unknown release, no worker: said here
        if stage is not None and stage not in {s.name for s in status.stages}:
            raise WardenError(
                f"unknown stage {stage!r}; stages: {', '.join(s.name for s in status.stages)}"
            )
        period_end = period = None
        if day is not None:
            period_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
            period = timedelta(days=1)
        builder = await self._builder()
        return await builder.build(
            kind, release_id, stage=stage, period_end=period_end, period=period
        )

    async def governance_review(self, month: str) -> GovernanceReview:
        check_month(month)
        builder = ReportBuilder(self.settings, None, self.store)
        return await builder.governance_review(month)

    @staticmethod
    def render(report: object, fmt: str) -> str:
        return render(report, fmt)

    async def schedule_governance_review(self, cron: str = DEFAULT_REVIEW_CRON) -> str:
        """Create or update the monthly review's schedule; 'created' or 'updated'."""
        client = await self.temporal.client()
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                GOVERNANCE_REVIEW_WORKFLOW,
                GovernanceReviewInput(),
                id=f"{GOVERNANCE_SCHEDULE_ID}-run",
                task_queue=self.settings.task_queue,
            ),
            spec=ScheduleSpec(cron_expressions=[cron]),
            state=ScheduleState(note="monthly governance review (Release Warden)"),
        )
        return await upsert_schedule(client, GOVERNANCE_SCHEDULE_ID, schedule)

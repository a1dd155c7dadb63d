"""When reports are built: a workflow only decides when; activities build, store and send them.

  ReleaseReports            the release's part: the go/no-go when a sign-off starts waiting, the
                            pilot health schedule while a pilot stage runs, release notes on
                            promotion and the retrospective however the release ends
  PilotHealthWorkflow       started by the schedule `pilot-health-<release id>`: one report, to
                            the webhooks
  GovernanceReviewWorkflow  started by the schedule `governance-review-monthly` (or by hand):
                            the month's governance review

Each change to what a running release does is behind its own `workflow.patched` marker, so
releases recorded before it replay as they ran.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.ledger import ReleaseLedger

with workflow.unsafe.imports_passed_through():
    from activities.reports import ReportActivities
    from activities.reports.build import previous_month
    from warden.models.notice import Notice
    from warden.models.plan import Stage
    from warden.models.release import ReleaseState, StageStatus
    from warden.models.reports import (
        GovernanceReviewInput,
        PilotHealthInput,
        PilotScheduleRequest,
        ReportKind,
        ReportRequest,
        ReportSummary,
        ScheduleResult,
    )
    from workflows import policies
    from workflows.common import audit_event, cause, send_notice, write_audit

#: The go/no-go report is built before a sign-off gate starts waiting.
GO_NO_GO_PATCH = "go-no-go-report"
#: A pilot stage gets a pilot health schedule, deleted when the release ends.
PILOT_SCHEDULE_PATCH = "pilot-health-schedule"
#: Release notes on promotion, and the retrospective in the release log, however it ends.
RELEASE_REPORTS_PATCH = "release-reports"


class ReleaseReports:
    def __init__(self, ledger: ReleaseLedger) -> None:
        self._ledger = ledger
        self._scheduled = False

    def _request(self, kind: ReportKind, stage: str | None = None) -> ReportRequest:
        return ReportRequest(
            release_id=self._ledger.release_id,
            kind=kind,
            stage=stage,
            run_id=workflow.info().run_id,
        )

    async def _run(self, what: str, method: Any, arg: Any, stage: str | None = None) -> Any:
        """A report activity; one that cannot complete is noted, and the release goes on."""
        try:
            return await workflow.execute_activity_method(method, arg, **policies.report_options())
        except ActivityError as exc:
            self._ledger.note("report.failed", f"{what} not built: {cause(exc)}", stage=stage)
            return None

    async def go_no_go(self, stage: Stage, status: StageStatus) -> ReportSummary | None:
        """Before the committee is asked: the stage's go/no-go, linked from the sign-off notice."""
        ledger = self._ledger
        if stage.name not in ledger.input.plan.go_no_go_stages():
            return None
        if not workflow.patched(GO_NO_GO_PATCH):
            return None
        ledger.step(f"building the go/no-go report of {stage.name}")
        summary: ReportSummary | None = await self._run(
            "go/no-go report",
            ReportActivities.build_go_no_go,
            self._request(ReportKind.GO_NO_GO, stage.name),
            stage.name,
        )
        if summary is None:
            return None
        status.go_no_go = summary
        await ledger.record(
            "report.go_no_go",
            summary.recommendation or "built",
            f"go/no-go report: {summary.headline}",
            stage=stage.name,
            details={
                "score": summary.score,
                "recommendation": summary.recommendation,
                "path": summary.path,
                "url": summary.url,
            },
        )
        return summary

    async def stage_started(self, stage: Stage) -> None:
        """A pilot stage gets its pilot health schedule (`pilot-health-<release id>`)."""
        ledger = self._ledger
        if not stage.is_pilot or self._scheduled or not workflow.patched(PILOT_SCHEDULE_PATCH):
            return
        interval = ledger.input.plan.reports.pilot_health.interval
        result: ScheduleResult | None = await self._run(
            "pilot health schedule",
            ReportActivities.ensure_pilot_schedule,
            PilotScheduleRequest(
                release_id=ledger.release_id,
                stage=stage.name,
                interval_s=interval.total_seconds(),
                task_queue=workflow.info().task_queue,
                trace_id=ledger.input.trace_id,
            ),
            stage.name,
        )
        if result is None:
            return
        # Deleted at the end even when it could not be confirmed: deleting is idempotent.
        self._scheduled = True
        if result.done:
            await ledger.record(
                "report.pilot_health_scheduled",
                result.message,
                f"pilot health schedule {result.schedule_id} {result.message}",
                stage=stage.name,
                details={"schedule": result.schedule_id, "intervalS": interval.total_seconds()},
            )
        else:
            ledger.note(
                "report.failed", f"no pilot health schedule: {result.message}", stage=stage.name
            )

    async def finish(self, outcome: ReleaseState) -> None:
        """However the release ended: its schedule goes, then its notes and retrospective."""
        ledger = self._ledger
        if self._scheduled:
            result: ScheduleResult | None = await self._run(
                "pilot health schedule removal",
                ReportActivities.delete_pilot_schedule,
                self._request(ReportKind.PILOT_HEALTH),
            )
            if result is not None and result.done:
                await ledger.record(
                    "report.pilot_health_unscheduled",
                    "deleted",
                    f"pilot health schedule {result.schedule_id} {result.message}",
                    details={"schedule": result.schedule_id},
                )
        if not workflow.patched(RELEASE_REPORTS_PATCH):
            return
        await ledger.flush()  # the retrospective reads the release's whole audit trail
        if outcome == ReleaseState.PROMOTED:
            notes: ReportSummary | None = await self._run(
                "release notes",
                ReportActivities.build_release_notes,
                self._request(ReportKind.RELEASE_NOTES),
            )
            if notes is not None:
                ledger.status.reports.append(notes)
                await ledger.record(
                    "report.release_notes",
                    "written",
                    f"release notes written: {notes.path}",
                    details={"path": notes.path, "url": notes.url},
                )
        retro: ReportSummary | None = await self._run(
            "retrospective",
            ReportActivities.write_retrospective,
            self._request(ReportKind.RETROSPECTIVE),
        )
        if retro is not None:
            ledger.status.reports.append(retro)
            ledger.note("report.retrospective", f"retrospective: {retro.headline}")
        await ledger.flush()


def _notice_key(kind: str) -> str:
    info = workflow.info()
    return f"{info.workflow_id}:{info.run_id}:{kind}"


@workflow.defn
class PilotHealthWorkflow:
    """One pilot health report: built, stored, sent to the webhooks, audited."""

    @workflow.run
    async def run(self, input: PilotHealthInput) -> ReportSummary | None:
        request = ReportRequest(
            release_id=input.release_id,
            kind=ReportKind.PILOT_HEALTH,
            stage=input.stage,
            period_end=workflow.now(),
            period=timedelta(seconds=input.interval_s),
        )
        running: bool = await workflow.execute_activity_method(
            ReportActivities.release_running, request, **policies.report_options()
        )
        if not running:
            # The release ended without removing its schedule (e.g. it was terminated).
            await workflow.execute_activity_method(
                ReportActivities.delete_pilot_schedule, request, **policies.report_options()
            )
            return None
        summary: ReportSummary = await workflow.execute_activity_method(
            ReportActivities.build_pilot_health, request, **policies.report_options()
        )
        await send_notice(
            Notice(
                key=_notice_key("pilot-health"),
                title=f"Pilot health: {input.release_id} ({input.stage})",
                text=f"{summary.headline}. Report: {summary.url} ({summary.path})",
                audience=["committee", "operations"],
                release_id=input.release_id,
                stage=input.stage,
                trace_id=input.trace_id or None,
                link=summary.url,
            )
        )
        await write_audit(
            [
                audit_event(
                    "report.pilot_health",
                    "sent",
                    user="warden",
                    entity=f"release:{input.release_id}/{input.stage}",
                    release_id=input.release_id,
                    trace_id=input.trace_id or None,
                    details={"path": summary.path, "headline": summary.headline},
                )
            ]
        )
        return summary


@workflow.defn
class GovernanceReviewWorkflow:
    """The monthly governance review: built, stored, sent to the webhooks, audited."""

    @workflow.run
    async def run(self, input: GovernanceReviewInput) -> ReportSummary:
        month = input.month or previous_month(workflow.now())
        summary: ReportSummary = await workflow.execute_activity_method(
            ReportActivities.build_governance_review,
            GovernanceReviewInput(month=month),
            **policies.report_options(),
        )
        await send_notice(
            Notice(
                key=_notice_key("governance-review"),
                title=f"Governance review {month}",
                text=f"{summary.headline}. Report: {summary.url} ({summary.path})",
                audience=["committee"],
                link=summary.url,
            )
        )
        await write_audit(
            [
                audit_event(
                    "report.governance_review",
                    "sent",
                    user="warden",
                    entity=f"governance-review:{month}",
                    release_id=None,
                    trace_id=None,
                    details={"path": summary.path, "headline": summary.headline},
                )
            ]
        )
        return summary

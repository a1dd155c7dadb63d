"""The report activities, and the builder they share with `warden report` and the API.

`ReportBuilder` reads what a report needs (the release's history and status through a Temporal
client, the audit store, the flag backend) and builds the report model; `ReportActivities`
stores what it builds and keeps the release log and the pilot health schedules. Every activity
is idempotent: reports are rewritten whole, the release log entry is keyed by release and run,
the audit row and guard observations by ids, and a schedule is created or deleted only once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.reports import build
from activities.reports.render import document, to_markdown
from activities.reports.sources import ReleaseRecord, query_status, read_release
from activities.reports.store import LogBusy, append_entry, store_report
from warden.flagstore import FlagBackend
from warden.models.audit import AuditEvent, AuditQuery
from warden.models.flags import FlagState
from warden.models.release import ReleaseStatus
from warden.models.reports import (
    GoNoGoReport,
    GovernanceReview,
    GovernanceReviewInput,
    PilotHealthInput,
    PilotHealthReport,
    PilotScheduleRequest,
    ReleaseNotes,
    ReportKind,
    ReportRequest,
    ReportSummary,
    Retrospective,
    ScheduleResult,
)
from warden.settings import Settings
from warden.stores.audit import AuditStore
from warden.stores.governance import GovernanceError, GovernanceStore, load_governance

log = logging.getLogger("warden.reports")
T = TypeVar("T")

#: Workflow type the pilot health schedules start (workflows/reports.py).
PILOT_HEALTH_WORKFLOW = "PilotHealthWorkflow"
GOVERNANCE_REVIEW_WORKFLOW = "GovernanceReviewWorkflow"
GOVERNANCE_SCHEDULE_ID = "governance-review-monthly"
HEARTBEAT_S = 2.0


def pilot_schedule_id(release_id: str) -> str:
    return f"pilot-health-{release_id}"


async def upsert_schedule(client: Client, schedule_id: str, schedule: Schedule) -> str:
    """Create the schedule, or replace the one with that id: 'created' or 'updated'."""
    try:
        await client.create_schedule(schedule_id, schedule)
        return "created"
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
        return "updated"


def _no_schedules(schedule_id: str) -> ScheduleResult:
    """The time-skipping test server has no schedules: said, not failed."""
    return ScheduleResult(
        schedule_id=schedule_id, done=False, message="this Temporal server has no schedules"
    )


def report_name(kind: ReportKind, stage: str | None = None, at: datetime | None = None) -> str:
    """The file name of a stored report (without extension)."""
    if kind == ReportKind.GO_NO_GO:
        return f"go-no-go-{stage}" if stage else "go-no-go"
    if kind == ReportKind.PILOT_HEALTH and at is not None:
        return f"pilot-health-{at.astimezone(UTC):%Y%m%dT%H%MZ}"
    return kind.value


def api_path(release_id: str, kind: ReportKind, stage: str | None = None) -> str:
    return f"/releases/{release_id}/reports/{kind.value}" + (f"?stage={stage}" if stage else "")


async def _heartbeating(work: Awaitable[T]) -> T:
    """Await `work`, heartbeating meanwhile when inside an activity (a dead worker is then
    noticed within the heartbeat timeout, not the whole start-to-close timeout)."""
    task = asyncio.ensure_future(work)
    if not activity.in_activity():
        return await task
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_S)
        if done:
            return task.result()
        activity.heartbeat()


def _to_thread(fn: Callable[[], T]) -> Awaitable[T]:
    return asyncio.to_thread(fn)


class ReportBuilder:
    """What each report is built from; shared by the activities and the on-demand service.

    `read_flags(environments, flags)` gives the flags as they are now (the activity reads its
    backend, the CLI and the API ask the workers)."""

    def __init__(
        self,
        settings: Settings,
        client: Client | None,
        store: AuditStore,
        read_flags: Callable[[list[str], list[str]], Awaitable[list[FlagState]]] | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self.store = store
        self._read_flags = read_flags

    @property
    def client(self) -> Client:
        if self._client is None:
            raise ApplicationError(
                "reports need a Temporal client; the worker passes one to ReportActivities",
                type="GateConfigError",
                non_retryable=True,
            )
        return self._client

    async def record(self, release_id: str, run_id: str | None = None) -> ReleaseRecord:
        return await read_release(self.client, release_id, run_id)

    async def status(self, release_id: str) -> ReleaseStatus:
        return await query_status(self.client, release_id)

    async def events(self, release_id: str) -> list[AuditEvent]:
        return await _to_thread(
            lambda: self.store.query(AuditQuery(releaseId=release_id, limit=1_000_000))
        )

    async def go_no_go(self, release_id: str, stage: str | None = None) -> GoNoGoReport:
        record = await self.record(release_id)
        status = await self.status(release_id)
        if stage is None:
            candidates = record.plan.go_no_go_stages() or [
                s.name for s in record.plan.stages if s.signoff is not None
            ]
            reached = [
                s.name for s in status.stages if s.name in candidates and s.started_at is not None
            ]
            stage = (
                reached or candidates or [status.current_stage or record.plan.stages[-1].name]
            )[-1]
        spec = record.plan.reports.go_no_go
        events = await self.events(release_id)
        rollbacks = await _to_thread(
            lambda: build.rollbacks_of_service(
                self.store, record.plan, release_id, spec.rollback_lookback, status.started_at
            )
        )
        return build.go_no_go(record, status, stage, events, rollbacks)

    async def pilot_health(
        self,
        release_id: str,
        stage: str | None = None,
        *,
        period_end: datetime | None = None,
        period: timedelta | None = None,
    ) -> PilotHealthReport:
        record = await self.record(release_id)
        try:
            status: ReleaseStatus | None = await self.status(release_id)
        except RPCError:
            status = None  # no worker answered; the report says so with an empty state
        plan = record.plan
        if stage is None:
            pilots = [s.name for s in plan.stages if s.is_pilot]
            stage = pilots[0] if pilots else plan.stages[-1].name
        end = period_end or datetime.now(UTC)
        length = period or plan.reports.pilot_health.interval
        return await _to_thread(
            lambda: build.pilot_health(record, status, stage, self.store, end - length, end)
        )

    async def release_notes(self, release_id: str) -> ReleaseNotes:
        record = await self.record(release_id)
        status = await self.status(release_id)
        plan = record.plan
        environments = [s.environment for s in status.snapshots] or plan.environments()
        current: list[FlagState] = []
        problem = ""
        if self._read_flags is not None and plan.flags:
            try:
                current = await self._read_flags(environments, plan.flags)
            except Exception as exc:  # the notes still list what was captured before the release
                problem = str(exc) or type(exc).__name__
                log.warning("release notes of %s: flags not read: %s", release_id, problem)
        return build.release_notes(plan, status, current, read_problem=problem)

    async def retrospective(self, release_id: str, run_id: str | None = None) -> Retrospective:
        record = await self.record(release_id, run_id)
        status = await self.status(release_id)
        events = await self.events(release_id)
        return build.retrospective(record.plan, status, record.run_id, events)

    async def governance_review(self, month: str) -> GovernanceReview:
        version, signed_by = await _to_thread(self._governance)
        return await _to_thread(
            lambda: build.governance_review(
                self.store, month, governance_version=version, signed_by=signed_by
            )
        )

    def _governance(self) -> tuple[str | None, list[str] | None]:
        path = self.settings.governance_file
        if path is None:
            return None, None
        try:
            document = load_governance(path)
        except GovernanceError as exc:
            return f"unreadable ({exc})", None
        grants = GovernanceStore(self.settings.audit_url)
        try:
            signoff = grants.signoff_for(document.digest())
        finally:
            grants.close()
        return document.version, (list(signoff.approved_by) if signoff else None)

    async def build(
        self,
        kind: ReportKind,
        release_id: str,
        *,
        stage: str | None = None,
        period_end: datetime | None = None,
        period: timedelta | None = None,
    ) -> GoNoGoReport | PilotHealthReport | ReleaseNotes | Retrospective:
        if kind == ReportKind.GO_NO_GO:
            return await self.go_no_go(release_id, stage)
        if kind == ReportKind.PILOT_HEALTH:
            return await self.pilot_health(release_id, stage, period_end=period_end, period=period)
        if kind == ReportKind.RELEASE_NOTES:
            return await self.release_notes(release_id)
        if kind == ReportKind.RETROSPECTIVE:
            return await self.retrospective(release_id)
        raise ValueError(f"{kind.value} is not a report of one release")


class ReportActivities:
    def __init__(
        self,
        settings: Settings,
        store: AuditStore,
        backend: FlagBackend | None,
        client: Client | None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._backend = backend
        self.builder = ReportBuilder(settings, client, store, self._read_flags)

    async def _read_flags(self, environments: list[str], flags: list[str]) -> list[FlagState]:
        if self._backend is None:
            return []
        states: list[FlagState] = []
        for environment in environments:
            states += await self._backend.read(environment, flags)
        return states

    def _summary(
        self, kind: ReportKind, release_id: str, paths: dict[str, Path], stage: str | None = None
    ) -> ReportSummary:
        url = api_path(release_id, kind, stage)
        if self.settings.api_url:
            url = self.settings.api_url.rstrip("/") + url
        return ReportSummary(
            kind=kind, generated_at=datetime.now(UTC), path=str(paths["md"]), url=url
        )

    def _store_report(self, owner: str, name: str, report: object) -> dict[str, Path]:
        return store_report(self.settings.artifacts_path, owner, name, report)

    @activity.defn(name="build_go_no_go")
    async def build_go_no_go(self, request: ReportRequest) -> ReportSummary:
        """The go/no-go of a stage whose sign-off is about to wait, stored in every format."""
        report = await _heartbeating(self.builder.go_no_go(request.release_id, request.stage))
        paths = await _to_thread(
            lambda: self._store_report(
                request.release_id, report_name(ReportKind.GO_NO_GO, report.stage), report
            )
        )
        summary = self._summary(ReportKind.GO_NO_GO, request.release_id, paths, report.stage)
        verdict = "Go" if report.recommendation == "go" else "No-go"
        blocked = (
            f"; blocked by {', '.join(b.condition for b in report.blocking)}"
            if report.blocking
            else ""
        )
        return summary.model_copy(
            update={
                "score": report.score,
                "recommendation": report.recommendation,
                "headline": f"{verdict}: readiness {report.score}/100 (threshold {report.threshold}){blocked}",
            }
        )

    @activity.defn(name="build_release_notes")
    async def build_release_notes(self, request: ReportRequest) -> ReportSummary:
        notes = await _heartbeating(self.builder.release_notes(request.release_id))
        paths = await _to_thread(
            lambda: self._store_report(request.release_id, ReportKind.RELEASE_NOTES.value, notes)
        )
        summary = self._summary(ReportKind.RELEASE_NOTES, request.release_id, paths)
        changed = sum(1 for f in notes.flags if f.now_known and f.now != f.before)
        return summary.model_copy(
            update={
                "headline": f"{len(notes.flags)} flag line(s), {changed} changed; {notes.state}"
            }
        )

    @activity.defn(name="build_pilot_health")
    async def build_pilot_health(self, request: ReportRequest) -> ReportSummary:
        end = request.period_end or datetime.now(UTC)
        report = await _heartbeating(
            self.builder.pilot_health(
                request.release_id, request.stage, period_end=end, period=request.period
            )
        )
        name = report_name(ReportKind.PILOT_HEALTH, at=report.period_end)
        paths = await _to_thread(lambda: self._store_report(request.release_id, name, report))
        summary = self._summary(ReportKind.PILOT_HEALTH, request.release_id, paths)
        down = [
            c.check for c in report.channels if c.availability is not None and c.availability < 1
        ]
        return summary.model_copy(
            update={
                "headline": (
                    f"{report.alerts_raised} alert(s), {report.guard_trips} guard trip(s), "
                    f"{report.refusals} refusal(s), {report.escalations} escalation(s)"
                    + (f"; channels with outages: {', '.join(down)}" if down else "")
                )
            }
        )

    @activity.defn(name="write_retrospective")
    async def write_retrospective(self, request: ReportRequest) -> ReportSummary:
        """The release's entry in the release log, exactly once per run; also stored as a report,
        its guard observations kept for the governance review, and one audit event."""
        record = await _heartbeating(
            self.builder.record(request.release_id, request.run_id or None)
        )
        status = await self.builder.status(request.release_id)
        events = await self.builder.events(request.release_id)
        retro = build.retrospective(record.plan, status, record.run_id, events)
        entry = to_markdown(*document(retro), level=2)
        path = self.settings.release_log_path
        try:
            written = await _heartbeating(
                _to_thread(lambda: append_entry(path, request.release_id, record.run_id, entry))
            )
        except LogBusy as exc:
            raise ApplicationError(str(exc), type="ReleaseLogBusy") from None
        paths = await _to_thread(
            lambda: self._store_report(request.release_id, ReportKind.RETROSPECTIVE.value, retro)
        )
        finished = (
            status.result.finished_at
            if status.result and status.result.finished_at
            else retro.generated_at
        )
        observations = build.guard_observations(record, finished)
        event = AuditEvent(
            eventId=str(
                uuid.uuid5(
                    uuid.NAMESPACE_URL, f"retrospective:{request.release_id}:{record.run_id}"
                )
            ),
            userId="warden",
            action="release.retrospective",
            entity=f"release:{request.release_id}",
            result="written",
            # after the release's last event, also where workflow time runs ahead (test server)
            timestamp=max(datetime.now(UTC), finished + timedelta(milliseconds=1)),
            releaseId=request.release_id,
            traceId=status.trace_id,
            source="worker",
            details={"path": str(path), "runId": record.run_id, "outcome": retro.outcome},
        )

        def keep() -> None:
            self._store.write_guard_observations(observations)
            self._store.write([event])

        await _heartbeating(_to_thread(keep))
        summary = self._summary(ReportKind.RETROSPECTIVE, request.release_id, paths)
        return summary.model_copy(
            update={
                "path": str(path),
                "headline": f"{retro.outcome}; entry {'appended to' if written else 'already in'} {path.name}",
            }
        )

    @activity.defn(name="build_governance_review")
    async def build_governance_review(self, input: GovernanceReviewInput) -> ReportSummary:
        month = input.month or build.previous_month(datetime.now(UTC))
        review = await _heartbeating(self.builder.governance_review(month))
        paths = await _to_thread(
            lambda: self._store_report("governance", f"review-{month}", review)
        )
        url = f"/reports/governance-review?month={month}"
        return ReportSummary(
            kind=ReportKind.GOVERNANCE_REVIEW,
            generated_at=review.generated_at,
            path=str(paths["md"]),
            url=(self.settings.api_url.rstrip("/") + url) if self.settings.api_url else url,
            headline=(
                f"{review.events} events, {len(review.gaps)} gap(s), "
                f"{len(review.permission_changes)} permission change event(s), governance file "
                + ("signed off" if review.governance_signed_off else "NOT signed off")
            ),
        )

    # -- the pilot health schedules ------------------------------------------------------------

    @activity.defn(name="ensure_pilot_schedule")
    async def ensure_pilot_schedule(self, request: PilotScheduleRequest) -> ScheduleResult:
        """Create (or, when it exists, update) `pilot-health-<release id>`."""
        schedule_id = pilot_schedule_id(request.release_id)
        client = self.builder.client
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                PILOT_HEALTH_WORKFLOW,
                PilotHealthInput(
                    release_id=request.release_id,
                    stage=request.stage,
                    interval_s=request.interval_s,
                    trace_id=request.trace_id,
                ),
                id=f"{schedule_id}-run",
                task_queue=request.task_queue or self.settings.task_queue,
            ),
            spec=ScheduleSpec(
                intervals=[ScheduleIntervalSpec(every=timedelta(seconds=request.interval_s))]
            ),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(
                note=f"daily pilot health of {request.release_id} in {request.stage} (Release Warden)"
            ),
        )
        try:
            done = await upsert_schedule(client, schedule_id, schedule)
        except RPCError as exc:
            if exc.status == RPCStatusCode.UNIMPLEMENTED:
                return _no_schedules(schedule_id)
            raise
        return ScheduleResult(schedule_id=schedule_id, done=True, message=done)

    @activity.defn(name="delete_pilot_schedule")
    async def delete_pilot_schedule(self, request: ReportRequest) -> ScheduleResult:
        """Delete `pilot-health-<release id>`; one already gone is fine."""
        schedule_id = pilot_schedule_id(request.release_id)
        try:
            await self.builder.client.get_schedule_handle(schedule_id).delete()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return ScheduleResult(schedule_id=schedule_id, done=True, message="already gone")
            if exc.status == RPCStatusCode.UNIMPLEMENTED:
                return _no_schedules(schedule_id)
            raise
        return ScheduleResult(schedule_id=schedule_id, done=True, message="deleted")

    @activity.defn(name="release_running")
    async def release_running(self, request: ReportRequest) -> bool:
        """Whether the release is still running (a pilot health run after it ended cleans up)."""
        from temporalio.client import WorkflowExecutionStatus

        try:
            described = await self.builder.client.get_workflow_handle(request.release_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return described.status == WorkflowExecutionStatus.RUNNING

    def activities(self) -> list[Callable[..., object]]:
        return [
            self.build_go_no_go,
            self.build_release_notes,
            self.build_pilot_health,
            self.write_retrospective,
            self.build_governance_review,
            self.ensure_pilot_schedule,
            self.delete_pilot_schedule,
            self.release_running,
        ]

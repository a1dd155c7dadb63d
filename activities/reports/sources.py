"""What a report is built from: the release's workflow history (its plan and every metric run,
with the measurements each one kept), its status (the `status` query) and the audit store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from warden.models.metrics import ChecksInput, ChecksReport, MeasurementPhase, MetricCheck
from warden.models.plan import ReleasePlan
from warden.models.release import ReleaseInput, ReleaseStatus
from warden.models.reports import CheckSeries, Point

#: Measurements outside the check's normal range (pending: breached, not yet for `for:`).
BREACHED = (MeasurementPhase.FAILED, MeasurementPhase.PENDING)


@dataclass
class MetricRun:
    """One `run_checks` activity of the release: what it was asked, what it reported."""

    input: ChecksInput
    report: ChecksReport


@dataclass
class ReleaseRecord:
    """A release as its history tells it."""

    release_id: str
    run_id: str
    input: ReleaseInput
    runs: list[MetricRun] = field(default_factory=list)
    events: int = 0

    @property
    def plan(self) -> ReleasePlan:
        return self.input.plan


async def read_release(client: Client, release_id: str, run_id: str | None = None) -> ReleaseRecord:
    """The release's input and every metric run, read from its history in one pass."""
    handle = client.get_workflow_handle(release_id, run_id=run_id)
    converter = client.data_converter
    started: ReleaseInput | None = None
    actual_run = run_id or ""
    scheduled: dict[int, ChecksInput] = {}
    runs: list[MetricRun] = []
    count = 0
    async for event in handle.fetch_history_events():
        count += 1
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            actual_run = actual_run or attrs.original_execution_run_id
            [started] = await converter.decode(attrs.input.payloads, [ReleaseInput])
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled_attrs = event.activity_task_scheduled_event_attributes
            if scheduled_attrs.activity_type.name == "run_checks":
                [asked] = await converter.decode(scheduled_attrs.input.payloads, [ChecksInput])
                scheduled[event.event_id] = asked
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            asked_for = scheduled.get(done.scheduled_event_id)
            if asked_for is not None and done.result.payloads:
                [report] = await converter.decode(done.result.payloads, [ChecksReport])
                runs.append(MetricRun(asked_for, report))
    if started is None:
        raise LookupError(f"{release_id} has no start event")
    return ReleaseRecord(release_id, actual_run, started, runs, count)


async def query_status(client: Client, release_id: str, run_id: str | None = None) -> ReleaseStatus:
    status: ReleaseStatus = await client.get_workflow_handle(release_id, run_id=run_id).query(
        "status", result_type=ReleaseStatus
    )
    return status


def series(
    runs: list[MetricRun],
    *,
    stage: str | None = None,
    phase: str | None = "guard",
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[CheckSeries]:
    """Each check's measurements (once each, in time order) with its normal range."""
    found: dict[tuple[str, str], CheckSeries] = {}
    seen: dict[tuple[str, str], set[datetime]] = {}
    for run in runs:
        if stage is not None and run.input.stage != stage:
            continue
        if phase is not None and run.input.phase != phase:
            continue
        checks: dict[str, MetricCheck] = {c.name: c for c in run.input.checks}
        for state in run.report.checks:
            check = checks.get(state.name)
            key = (run.input.stage, state.name)
            line = found.get(key)
            if line is None:
                line = found[key] = CheckSeries(
                    stage=run.input.stage,
                    check=state.name,
                    phase=run.input.phase,
                    min=check.min if check else None,
                    max=check.max if check else None,
                )
                seen[key] = set()
            for m in state.measurements:
                if m.at in seen[key]:
                    continue
                if (since is not None and m.at < since) or (until is not None and m.at >= until):
                    continue
                seen[key].add(m.at)
                line.points.append(Point(at=m.at, value=m.value, breached=m.phase in BREACHED))
    for line in found.values():
        line.points.sort(key=lambda p: p.at)
    return sorted(found.values(), key=lambda s: (s.stage, s.check))


def failed_counts(runs: list[MetricRun], stage: str, phase: str = "guard") -> dict[str, int]:
    """Per check, the most failed measurements any one run counted (measurements kept as
    evidence are capped; the counters are not)."""
    counts: dict[str, int] = {}
    for run in runs:
        if run.input.stage != stage or run.input.phase != phase:
            continue
        for state in run.report.checks:
            counts[state.name] = max(counts.get(state.name, 0), state.failed)
    return counts

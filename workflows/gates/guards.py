"""Guards: the stage's guard checks watch every flag step's bake and the stage's own bake.

One heartbeating `run_checks` activity watches a whole window and returns only on a breach, an
alert that starts or clears, or the end of the window; its counters come back in the report and
go into the next call, so a week-long bake costs a handful of history events.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio import workflow

from workflows.control import ReleaseControl
from workflows.ledger import ReleaseLedger
from workflows.stop import ReleaseStop, gate_activity

with workflow.unsafe.imports_passed_through():
    from warden.models.metrics import (
        CheckAction,
        ChecksInput,
        ChecksOutcome,
        ChecksReport,
        CheckState,
        MetricCheck,
    )
    from warden.models.plan import Stage
    from warden.models.release import Alert, ChecklistKey, ItemStatus, ReleaseState, StageStatus
    from workflows import policies

#: Guard reports kept in a stage's status; older ones are in the audit trail.
GUARD_REPORTS_KEPT = 5


async def run_checks(
    ledger: ReleaseLedger,
    control: ReleaseControl,
    stage: Stage,
    checks: list[MetricCheck],
    *,
    phase: Literal["pre", "guard"],
    expected: timedelta,
    window_s: float = 0.0,
    state: list[CheckState] | None = None,
) -> ChecksReport:
    """One `run_checks` activity over the stage's checks, abortable; a failure stops the stage."""
    return await gate_activity(
        "checks" if phase == "pre" else "guard",
        stage.name,
        control.abortable(
            workflow.execute_activity(
                "run_checks",
                ChecksInput(
                    release_id=ledger.release_id,
                    stage=stage.name,
                    base_url=stage.base_url,
                    phase=phase,
                    checks=checks,
                    trace_id=ledger.input.trace_id,
                    window_s=window_s,
                    state=state or [],
                ),
                result_type=ChecksReport,
                **policies.checks_options(expected),
            )
        ),
    )


def audience_for(stage: Stage, check_name: str) -> list[str]:
    """Who hears about a check: its own `notify` list, else operations."""
    check = next((c for c in stage.checks if c.name == check_name), None)
    return list(check.notify) if check and check.notify else ["operations"]


class Guards:
    def __init__(self, ledger: ReleaseLedger, control: ReleaseControl) -> None:
        self._ledger = ledger
        self._control = control

    async def watch(self, stage: Stage, duration: timedelta, label: str) -> None:
        """Wait `duration` while the stage's guards watch; one activity per window, not per sample."""
        ledger = self._ledger
        status = ledger.stage(stage.name)
        checks = stage.guard_checks()
        ledger.step(label)
        if not checks:
            await self._control.abortable(workflow.sleep(duration))
            return
        remaining = duration.total_seconds()
        state: list[CheckState] = []
        while remaining > 0:
            report = await run_checks(
                ledger,
                self._control,
                stage,
                checks,
                phase="guard",
                expected=timedelta(seconds=remaining),
                window_s=remaining,
                state=state,
            )
            _keep(status, report)
            state = report.checks
            remaining = report.window_left_s
            if report.outcome == ChecksOutcome.PASSED:
                return
            if report.outcome == ChecksOutcome.ALERT_CHANGED:
                await self._alerts_changed(stage, report)
                continue
            summary = report.summary()
            await ledger.record(
                "guard.tripped",
                report.outcome.value,
                f"guard {report.tripped or ''} {report.outcome.value} during {label}: {summary}",
                stage=stage.name,
                details={"check": report.tripped, "summary": summary, "during": label},
            )
            if report.outcome == ChecksOutcome.INCONCLUSIVE or report.action == CheckAction.PAUSE:
                ledger.item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.PENDING, summary)
                await self._control.auto_pause(
                    f"guard {report.outcome.value} during {label}; resume to keep watching"
                )
                state = [s.resumed() for s in state]
                continue
            ledger.item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.FAILED, summary)
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"guard {report.tripped} tripped during {label}: {summary}",
                "guard",
                stage.name,
            )

    async def _alerts_changed(self, stage: Stage, report: ChecksReport) -> None:
        ledger = self._ledger
        alerts = ledger.status.alerts
        active = {a.check: a for a in alerts if a.active and a.stage == stage.name}
        for check in report.checks:
            if check.alerting and check.name not in active:
                alert = Alert(
                    check=check.name,
                    stage=stage.name,
                    since=workflow.now(),
                    message=check.message or f"{check.name} breached",
                )
                alerts.append(alert)
                await ledger.notify(
                    f"alert:{check.name}:{len(alerts)}",
                    f"Alert: {check.name} in {stage.name}",
                    alert.message,
                    severity="warning",
                    audience=audience_for(stage, check.name),
                    stage=stage.name,
                )
                await ledger.record(
                    "alert.raised",
                    "active",
                    f"alert {check.name}: {alert.message}",
                    stage=stage.name,
                    details={"check": check.name},
                )
            elif not check.alerting and check.name in active:
                active[check.name].active = False
                await ledger.notify(
                    f"alert-cleared:{check.name}:{len(alerts)}",
                    f"Resolved: {check.name} in {stage.name}",
                    f"{check.name} is back to normal",
                    audience=audience_for(stage, check.name),
                    stage=stage.name,
                )
                await ledger.record(
                    "alert.cleared",
                    "cleared",
                    f"alert {check.name} cleared",
                    stage=stage.name,
                    details={"check": check.name},
                )


def _keep(status: StageStatus, report: ChecksReport) -> None:
    status.guards.append(report)
    del status.guards[:-GUARD_REPORTS_KEPT]

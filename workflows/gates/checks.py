"""Pre-promotion metric checks (checklist item 3), against the stage as it serves the release.

Missing evidence is never a pass: an inconclusive run pauses the release until a person
resumes (the checks run again) or aborts it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.control import ReleaseControl
from workflows.gates.guards import audience_for, run_checks
from workflows.ledger import ReleaseLedger
from workflows.stop import ReleaseStop

with workflow.unsafe.imports_passed_through():
    from warden.models.metrics import CheckAction, ChecksOutcome
    from warden.models.plan import Stage
    from warden.models.release import ChecklistKey, ItemStatus, ReleaseState, StageStatus


class ChecksGate:
    def __init__(self, ledger: ReleaseLedger, control: ReleaseControl) -> None:
        self._ledger = ledger
        self._control = control

    async def run(self, stage: Stage, status: StageStatus) -> None:
        ledger = self._ledger
        checks = stage.pre_checks()
        if not checks:
            self._guards_only(stage, status)
            return
        while True:
            await self._control.checkpoint(f"metric checks in {stage.name}")
            window = max(
                (c.initial_delay + c.interval * ((c.count or 1) - 1) for c in checks),
                default=timedelta(),
            )
            report = await run_checks(
                ledger, self._control, stage, checks, phase="pre", expected=window
            )
            status.checks = report
            summary = report.summary()
            notify_only = (
                report.outcome == ChecksOutcome.FAILED and report.action == CheckAction.NOTIFY
            )
            await ledger.record(
                "checks.result",
                "warning" if notify_only else report.outcome.value,
                (
                    f"metric checks passed with a warning: notify-only check {report.tripped} "
                    f"tripped ({summary})"
                    if notify_only
                    else f"metric checks {summary}"
                ),
                stage=stage.name,
                details={"summary": summary},
            )
            if report.outcome == ChecksOutcome.PASSED:
                ledger.item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.PASSED, summary)
                return
            if report.outcome == ChecksOutcome.INCONCLUSIVE:
                ledger.item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.PENDING, summary)
                await self._control.auto_pause(
                    f"metric checks inconclusive in {stage.name}: {summary}; resume to re-run"
                )
                continue
            if report.action == CheckAction.NOTIFY:
                await ledger.notify(
                    f"check-notify:{stage.name}:{report.tripped}",
                    f"Check {report.tripped} tripped in {stage.name}",
                    summary,
                    severity="warning",
                    audience=audience_for(stage, report.tripped or ""),
                    stage=stage.name,
                )
                ledger.item(
                    stage.name,
                    ChecklistKey.THRESHOLDS,
                    ItemStatus.WARNING,
                    f"notify-only check {report.tripped} tripped: {summary}",
                )
                return
            ledger.item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.FAILED, summary)
            if report.action == CheckAction.PAUSE:
                await self._control.auto_pause(
                    f"check {report.tripped} failed in {stage.name}; resume to re-run"
                )
                continue
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"metric check {report.tripped} failed in {stage.name}: {summary}",
                "checks",
                stage.name,
            )

    def _guards_only(self, stage: Stage, status: StageStatus) -> None:
        """No pre-promotion checks: item 3 says what the guards that ran found, either way."""
        ledger = self._ledger
        item = status.item(ChecklistKey.THRESHOLDS)
        if item.status in (ItemStatus.FAILED, ItemStatus.WARNING):
            return  # a guard already said so
        windows = [r for r in status.guards if r.outcome == ChecksOutcome.PASSED]
        if not stage.guard_checks() or not windows:
            evidence = "no metric checks" if not stage.guard_checks() else "no guard window ran"
            ledger.item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.NOT_APPLICABLE, evidence)
            return
        measured = sum(c.measured for r in windows for c in r.checks)
        evidence = (
            f"guards passed: {measured} measurement(s) in {len(windows)} window(s); "
            f"last {windows[-1].summary()}"
        )
        alerts = sorted({a.check for a in ledger.status.alerts if a.stage == stage.name})
        if alerts:
            ledger.item(
                stage.name,
                ChecklistKey.THRESHOLDS,
                ItemStatus.WARNING,
                f"{evidence}; notify-only alerts raised: {', '.join(alerts)}",
            )
            return
        ledger.item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.PASSED, evidence)

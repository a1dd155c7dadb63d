"""Smoke checks: HTTP probes against the stage before anything is switched on there."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.control import ReleaseControl
from workflows.ledger import ReleaseLedger
from workflows.stop import ReleaseStop, gate_activity

with workflow.unsafe.imports_passed_through():
    from activities.smoke import SmokeActivities
    from warden.models.plan import Stage
    from warden.models.release import ReleaseState, StageStatus
    from warden.models.smoke import SmokeInput
    from workflows import policies


class SmokeGate:
    def __init__(self, ledger: ReleaseLedger, control: ReleaseControl) -> None:
        self._ledger = ledger
        self._control = control

    async def run(self, stage: Stage, status: StageStatus) -> None:
        if not stage.smoke:
            return
        await self._control.checkpoint(f"smoke checks in {stage.name}")
        report = await gate_activity(
            "smoke",
            stage.name,
            workflow.execute_activity_method(
                SmokeActivities.run_smoke_checks,
                SmokeInput(
                    release_id=self._ledger.release_id,
                    stage=stage.name,
                    base_url=stage.base_url,
                    checks=stage.smoke,
                    trace_id=self._ledger.input.trace_id,
                ),
                **policies.smoke_options(sum((c.timeout for c in stage.smoke), timedelta())),
            ),
        )
        status.smoke = report
        verdict = "passed" if report.passed else "failed"
        await self._ledger.record(
            "smoke.result",
            verdict,
            f"smoke checks {verdict}: {report.summary()}",
            stage=stage.name,
            details={"summary": report.summary()},
        )
        if not report.passed:
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"smoke checks failed in {stage.name}: {report.summary()}",
                "smoke",
                stage.name,
            )

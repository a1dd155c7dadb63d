"""The flag ramp: each of the stage's flags goes up step by step, each step baked under the guards."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.control import ReleaseControl
from workflows.gates.guards import Guards
from workflows.ledger import ReleaseLedger
from workflows.saga import FlagSaga
from workflows.stop import ReleaseStop, gate_activity

with workflow.unsafe.imports_passed_through():
    from activities.flags import FlagActivities
    from warden.models.common import format_duration
    from warden.models.flags import FlagChange, FlagChangeInput, FlagStepRecord
    from warden.models.plan import Stage
    from warden.models.release import StageStatus
    from workflows import policies


class FlagRamp:
    def __init__(
        self, ledger: ReleaseLedger, control: ReleaseControl, saga: FlagSaga, guards: Guards
    ) -> None:
        self._ledger = ledger
        self._control = control
        self._saga = saga
        self._guards = guards

    async def run(self, stage: Stage, status: StageStatus) -> None:
        ledger = self._ledger
        for ramp in stage.flags:
            for percent in ramp.steps_for(stage.name):
                await self._control.checkpoint(f"{ramp.flag} to {percent}% in {stage.env}")
                self._saga.touch(stage.env, ramp.flag)
                before = self._saga.percent_before(stage.env, ramp.flag)
                await ledger.flush()  # a flag changes only with the trail up to date
                result = await gate_activity(
                    "flags",
                    stage.name,
                    workflow.execute_activity_method(
                        FlagActivities.apply_flag_change,
                        FlagChangeInput(
                            release_id=ledger.release_id,
                            change=FlagChange(
                                flag=ramp.flag, environment=stage.env, percent=percent
                            ),
                            trace_id=ledger.input.trace_id,
                        ),
                        **policies.flag_write_options(),
                    ),
                )
                step = FlagStepRecord(
                    flag=ramp.flag, environment=stage.env, percent=percent, at=workflow.now()
                )
                status.flag_steps.append(step)
                await ledger.record(
                    "flag.changed",
                    "applied",
                    f"{ramp.flag} → {percent}% in {stage.env}",
                    stage=stage.name,
                    entity=f"flag:{ramp.flag}@{stage.env}",
                    details={
                        "percent": percent,
                        "changed": result.changed,
                        # From the workflow's own record: a retried write finds the new value
                        # already there, so the backend's "before" would be the new percent.
                        "before": before,
                    },
                )
                if ramp.bake > timedelta(0):
                    step.state = "baking"
                    try:
                        await self._guards.watch(
                            stage,
                            ramp.bake,
                            f"{ramp.flag} at {percent}% baking {format_duration(ramp.bake)}",
                        )
                    except ReleaseStop:
                        step.state = "tripped"
                        raise
                step.state = "done"

"""The flag ramp: each of the stage's flags goes up step by step, each step baked under the guards.

A release never lowers a flag that is already live: a step at or below what the flag serves is
skipped and recorded as skipped, with its reason, unless the ramp says `start_over: true`. A ramp
whose every step is skipped still bakes once, so its guards watch the stage.
"""

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
    from warden.models.flags import (
        FlagChange,
        FlagChangeInput,
        FlagStepRecord,
        skipped_step_reason,
    )
    from warden.models.flags import FlagRamp as RampPlan
    from warden.models.plan import Stage
    from warden.models.release import StageStatus
    from workflows import policies

#: Releases started before a ramp skipped the steps a live flag already serves replay without it.
KEEP_LIVE_FLAGS_PATCH = "ramp-keeps-live-flags"


class FlagRamp:
    def __init__(
        self, ledger: ReleaseLedger, control: ReleaseControl, saga: FlagSaga, guards: Guards
    ) -> None:
        self._ledger = ledger
        self._control = control
        self._saga = saga
        self._guards = guards

    async def run(self, stage: Stage, status: StageStatus) -> None:
        keep_live = workflow.patched(KEEP_LIVE_FLAGS_PATCH) if stage.flags else False
        for ramp in stage.flags:
            steps = ramp.steps_for(stage.name)
            applied = 0
            for index, percent in enumerate(steps):
                await self._control.checkpoint(f"{ramp.flag} to {percent}% in {stage.env}")
                before = self._saga.percent_before(stage.env, ramp.flag)
                if keep_live and percent in ramp.skips(stage.name, before):
                    assert before is not None
                    last = index == len(steps) - 1
                    await self._skip(
                        stage, status, ramp, percent, before, bake=last and not applied
                    )
                    continue
                applied += 1
                await self._apply(stage, status, ramp, percent, before)

    async def _skip(
        self,
        stage: Stage,
        status: StageStatus,
        ramp: RampPlan,
        percent: int,
        served: int,
        *,
        bake: bool,
    ) -> None:
        reason = skipped_step_reason(ramp.flag, stage.env, served, percent)
        step = FlagStepRecord(
            flag=ramp.flag,
            environment=stage.env,
            percent=percent,
            at=workflow.now(),
            state="skipped",
            reason=reason,
        )
        status.flag_steps.append(step)
        await self._ledger.record(
            "flag.step.skipped",
            "skipped",
            reason,
            stage=stage.name,
            entity=f"flag:{ramp.flag}@{stage.env}",
            details={"percent": percent, "served": served, "reason": "already-served"},
        )
        if bake and ramp.bake > timedelta(0):
            await self._guards.watch(
                stage,
                ramp.bake,
                f"{ramp.flag} at {served}% baking {format_duration(ramp.bake)}",
            )

    async def _apply(
        self, stage: Stage, status: StageStatus, ramp: RampPlan, percent: int, before: int | None
    ) -> None:
        ledger = self._ledger
        self._saga.touch(stage.env, ramp.flag)
        await ledger.flush()  # a flag changes only with the trail up to date
        result = await gate_activity(
            "flags",
            stage.name,
            workflow.execute_activity_method(
                FlagActivities.apply_flag_change,
                FlagChangeInput(
                    release_id=ledger.release_id,
                    change=FlagChange(flag=ramp.flag, environment=stage.env, percent=percent),
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

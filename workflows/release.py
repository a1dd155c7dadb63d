"""ReleaseWorkflow: a release walks its stages in order and proves each one safe before going on.

This class is the conductor: it says the order of the steps and hands each one to the part that
does it. Deterministic code only; every effect is an activity, with timeouts and retries from
`workflows.policies`.

  ledger.py          status, checklist, timeline, audit trail, memo and notices
  control.py         pause, resume, abort and the checkpoints that honour them
  saga.py            flags present, snapshot before the first change, exact restore when it stops
  gates/governance   the governance file signed off, before production
  gates/smoke        HTTP probes                     gates/ramp     flag steps, each guarded
  gates/guards       guard checks during bakes       gates/contract schemathesis
  gates/checks       pre-promotion metric checks     gates/signoff  committee quorum

One workflow per release rather than a child workflow per stage: approvals, pause, resume and
abort are updates validated against one state, and a whole release stays within a few hundred
history events because guards watch metrics inside one long-running activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow

from workflows.control import ReleaseControl
from workflows.gates.checks import ChecksGate
from workflows.gates.contract import ContractGate
from workflows.gates.governance import GovernanceGate
from workflows.gates.guards import Guards
from workflows.gates.ramp import FlagRamp
from workflows.gates.signoff import SignoffGate
from workflows.gates.smoke import SmokeGate
from workflows.ledger import ReleaseLedger
from workflows.reports import ReleaseReports
from workflows.saga import FlagSaga
from workflows.stop import ReleaseStop
from workflows.trust import Refusal, RequestTrust

with workflow.unsafe.imports_passed_through():
    from warden.models.common import format_duration
    from warden.models.plan import Stage
    from warden.models.release import (
        AbortRequest,
        ControlOutcome,
        ControlRequest,
        DecisionOutcome,
        DecisionRequest,
        ItemStatus,
        RefusalRecord,
        ReleaseInput,
        ReleaseResult,
        ReleaseState,
        ReleaseStatus,
        StageState,
    )

#: The requests people send a release: each names its user and may carry a proof.
Req = TypeVar("Req", DecisionRequest, ControlRequest, AbortRequest)


@workflow.defn
class ReleaseWorkflow:
    @workflow.init
    def __init__(self, input: ReleaseInput) -> None:
        self._input = input
        self._plan = input.plan
        self._ledger = ledger = ReleaseLedger(input)
        self._control = control = ReleaseControl(ledger)
        self._saga = FlagSaga(input, ledger)
        self._governance = GovernanceGate(input, ledger, control)
        guards = Guards(ledger, control)
        self._guards = guards
        self._smoke = SmokeGate(ledger, control)
        self._ramp = FlagRamp(ledger, control, self._saga, guards)
        self._contract = ContractGate(ledger, control)
        self._checks = ChecksGate(ledger, control)
        self._reports = ReleaseReports(ledger)
        self._signoff = SignoffGate(ledger, control, self._governance, self._reports)
        self._trust = RequestTrust(input.options.trust, ledger.release_id)

    # -- the pipeline ----------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ReleaseInput) -> ReleaseResult:
        try:
            result = await self._pipeline(input)
        except (Exception, asyncio.CancelledError):
            # However the release ends, its audit trail is complete first.
            await asyncio.shield(asyncio.ensure_future(self._ledger.flush()))
            raise
        await self._ledger.flush()
        return result

    async def _pipeline(self, input: ReleaseInput) -> ReleaseResult:
        ledger = self._ledger
        ledger.publish()
        await ledger.record(
            "release.started",
            "started",
            f"started by {input.started_by}",
            user=input.started_by,
            details={
                "version": self._plan.version,
                "stages": [s.name for s in self._plan.stages],
                "flags": self._plan.flags,
                "devIdentity": input.dev_identity,
            },
        )
        try:
            try:
                await self._governance.prepare()
                await self._saga.prepare()
                for stage in self._plan.stages:
                    await self._run_stage(stage)
            except ReleaseStop as stop:
                result = await self._end(stop)
            else:
                result = await self._finish(ReleaseState.PROMOTED, "promoted through every stage")
        except asyncio.CancelledError:
            # Cancellation must not leave flags half-changed: restore, shielded, then report cancelled.
            cleanup = asyncio.ensure_future(
                self._end(ReleaseStop(ReleaseState.ABORTED, "workflow cancelled", "cancel"))
            )
            await asyncio.shield(cleanup)
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _run_stage(self, stage: Stage) -> None:
        """Switch the release on here (guarded), prove the stage as it now serves, then sign off."""
        ledger = self._ledger
        status = ledger.stage(stage.name)
        await self._control.checkpoint(f"starting stage {stage.name}")
        if stage.is_production:
            await self._governance.recheck(stage)
        status.state = StageState.RUNNING
        status.started_at = workflow.now()
        ledger.status.current_stage = stage.name
        ledger.publish()
        await ledger.record(
            "stage.started", "started", f"stage {stage.name} started", stage=stage.name
        )
        await self._reports.stage_started(stage)
        await self._smoke.run(stage, status)
        await self._ramp.run(stage, status)
        if stage.bake > timedelta(0):
            await self._guards.watch(
                stage, stage.bake, f"bake {format_duration(stage.bake)} in {stage.name}"
            )
        await self._contract.run(stage, status)
        await self._checks.run(stage, status)
        await self._signoff.run(stage, status)

        not_passed = [
            i.key.value
            for i in status.checklist
            if i.status not in (ItemStatus.PASSED, ItemStatus.WARNING, ItemStatus.NOT_APPLICABLE)
        ]
        if not_passed:
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"stage {stage.name} checklist incomplete: {', '.join(not_passed)}",
                "checklist",
                stage.name,
            )
        status.state = StageState.PROMOTED
        status.finished_at = workflow.now()
        await ledger.record(
            "stage.promoted", "promoted", f"stage {stage.name} promoted", stage=stage.name
        )

    async def _end(self, stop: ReleaseStop) -> ReleaseResult:
        """A release that stops restores the flags it changed, then says how it ended."""
        ledger = self._ledger
        if stop.stage:
            status = ledger.stage(stop.stage)
            status.state = StageState.FAILED
            status.failure = stop.reason
            status.finished_at = workflow.now()
        for status in ledger.status.stages:
            if status.state == StageState.PENDING:
                status.state = StageState.SKIPPED
        ledger.note(f"release.{stop.trigger}", stop.reason, stage=stop.stage)
        outcome = stop.outcome
        if self._saga.changed:
            await self._saga.compensate(stop)
            if outcome in (ReleaseState.FAILED, ReleaseState.REJECTED):
                outcome = ReleaseState.ROLLED_BACK
        return await self._finish(outcome, stop.reason, failed_stage=stop.stage)

    async def _finish(
        self, outcome: ReleaseState, reason: str, failed_stage: str | None = None
    ) -> ReleaseResult:
        ledger = self._ledger
        status = ledger.status
        result = ReleaseResult(
            release_id=ledger.release_id,
            outcome=outcome,
            reason=reason,
            failed_stage=failed_stage,
            promoted_stages=[s.name for s in status.stages if s.state == StageState.PROMOTED],
            rollback=status.rollback,
            finished_at=workflow.now(),
        )
        status.state = outcome
        status.result = result
        status.paused = False
        ledger.step(f"{outcome.value}: {reason}")
        ledger.publish()
        await ledger.record(
            "release.finished",
            outcome.value,
            f"{outcome.value}: {reason}",
            details={"reason": reason, "failedStage": failed_stage},
        )
        if outcome != ReleaseState.PROMOTED:
            await ledger.notify(
                "finished",
                f"Release {ledger.release_id} ended: {outcome.value}",
                reason,
                severity="warning",
                audience=["owner", "operations"],
            )
        await self._reports.finish(outcome)
        return result

    # -- queries, updates and signals: each part validates and answers its own ----------------

    @workflow.query
    def status(self) -> ReleaseStatus:
        return self._ledger.status

    @workflow.update
    async def approve(self, request: DecisionRequest) -> DecisionOutcome:
        request = await self._admit(
            request, "approve", request.stage, lambda: self._signoff.validate(request, True)
        )
        return await self._signoff.decide(request, approve=True)

    @approve.validator
    def _validate_approve(self, request: DecisionRequest) -> None:
        if self._trust.enforced:
            self._trust.validate(request, DecisionRequest, "approve")
        else:
            self._signoff.validate(request, approve=True)

    @workflow.update
    async def reject(self, request: DecisionRequest) -> DecisionOutcome:
        request = await self._admit(
            request, "reject", request.stage, lambda: self._signoff.validate(request, False)
        )
        return await self._signoff.decide(request, approve=False)

    @reject.validator
    def _validate_reject(self, request: DecisionRequest) -> None:
        if self._trust.enforced:
            self._trust.validate(request, DecisionRequest, "reject")
        else:
            self._signoff.validate(request, approve=False)

    @workflow.signal
    async def record_refusal(self, refusal: RefusalRecord) -> None:
        """Refused requests are audited too; the client that was refused reports it here."""
        if not isinstance(refusal, RefusalRecord):  # a signal cannot be refused; drop a non-record
            workflow.logger.warning("record_refusal signal without a RefusalRecord ignored")
            return
        await self._ledger.record_refusal(refusal)

    @workflow.update
    async def pause(self, request: ControlRequest) -> ControlOutcome:
        request = await self._admit(
            request, "pause", None, lambda: self._control.validate_pause(request)
        )
        return await self._control.pause(request)

    @pause.validator
    def _validate_pause(self, request: ControlRequest) -> None:
        if self._trust.enforced:
            self._trust.validate(request, ControlRequest, "pause")
        else:
            self._control.validate_pause(request)

    @workflow.update
    async def resume(self, request: ControlRequest) -> ControlOutcome:
        request = await self._admit(
            request, "resume", None, lambda: self._control.validate_resume(request)
        )
        return await self._control.resume(request)

    @resume.validator
    def _validate_resume(self, request: ControlRequest) -> None:
        if self._trust.enforced:
            self._trust.validate(request, ControlRequest, "resume")
        else:
            self._control.validate_resume(request)

    @workflow.update
    async def abort(self, request: AbortRequest) -> ControlOutcome:
        request = await self._admit(
            request, "abort", None, lambda: self._control.validate_abort(request)
        )
        return await self._control.abort(request)

    @abort.validator
    def _validate_abort(self, request: AbortRequest) -> None:
        if self._trust.enforced:
            self._trust.validate(request, AbortRequest, "abort")
        else:
            self._control.validate_abort(request)

    async def _admit(
        self, request: Req, action: str, stage: str | None, rules: Callable[[], None]
    ) -> Req:
        """The request as the release takes it (marked claimed or proven), or its refusal,
        audited, as the update's failure."""
        if not self._trust.enforced:
            return request
        try:
            proven = self._trust.admit(
                user=request.user, proof=request.proof, action=action, stage=stage, rules=rules
            )
        except Refusal as refusal:
            await self._ledger.record(
                f"{action}.refused",
                "refused",
                f"{action} by {request.user} refused: {refusal.reason}",
                user=request.user,
                stage=stage,
                details={
                    "reason": refusal.reason,
                    "type": refusal.type,
                    "devIdentity": request.dev_identity,
                    "requestId": request.request_id,
                    "proof": "none" if request.proof is None else "not valid",
                },
                flush=True,
            )
            raise self._trust.refused(refusal) from None
        return request.model_copy(update={"dev_identity": not proven})

"""Committee sign-off (checklist item 4): a quorum of members, by a deadline, never the starter.

The gate waits for decisions; the `approve` and `reject` updates arrive through `validate` (a
refusal changes nothing and says why) and `decide`. The committee decides with the stage's
whole evidence in front of it: the gate is the last one a stage meets.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.control import ReleaseControl, wait_until
from workflows.gates.governance import GovernanceGate
from workflows.ledger import ReleaseLedger
from workflows.reports import ReleaseReports
from workflows.stop import ReleaseStop, gate_activity

with workflow.unsafe.imports_passed_through():
    from activities.governance import GovernanceActivities
    from warden.models.common import format_time
    from warden.models.plan import Stage
    from warden.models.release import (
        ChecklistKey,
        DecisionOutcome,
        DecisionRequest,
        ItemStatus,
        ReleaseState,
        StageState,
        StageStatus,
    )
    from warden.models.signoff import Decision, Members, MembersInput, SignoffState
    from workflows import policies
    from workflows.common import require_payload


def waiting_step(stage: str, gate: SignoffState) -> str:
    """The current step while a stage waits: what it needs, from whom, and how much it has."""
    plural = "" if gate.quorum == 1 else "s"
    step = (
        f"waiting for sign-off of {stage}: needs {gate.quorum} approval{plural} from "
        f"{', '.join(gate.members)} ({len(gate.approvals)} so far)"
    )
    covered = {role for d in gate.approvals for role in gate.member_roles.get(d.user, [])}
    missing = [role for role in gate.required_roles if role not in covered]
    if missing:
        step += f"; among them a {' and a '.join(missing)} approver"
    return step


class SignoffGate:
    def __init__(
        self,
        ledger: ReleaseLedger,
        control: ReleaseControl,
        governance: GovernanceGate,
        reports: ReleaseReports,
    ) -> None:
        self._ledger = ledger
        self._control = control
        self._governance = governance
        self._reports = reports

    @property
    def _started_by(self) -> str:
        return self._ledger.input.started_by

    async def run(self, stage: Stage, status: StageStatus) -> None:
        ledger = self._ledger
        spec = stage.signoff
        governance = self._governance.evidence() if stage.is_production else ""
        if spec is None:
            if governance:
                ledger.item(stage.name, ChecklistKey.SIGNOFF, ItemStatus.PASSED, governance)
            else:
                ledger.item(
                    stage.name,
                    ChecklistKey.SIGNOFF,
                    ItemStatus.NOT_APPLICABLE,
                    "no sign-off required",
                )
            return
        await self._control.checkpoint(f"sign-off of {stage.name}")
        if spec.committee:
            members: Members = await gate_activity(
                "signoff",
                stage.name,
                workflow.execute_activity_method(
                    GovernanceActivities.resolve_members,
                    MembersInput(
                        committee=spec.committee,
                        approvers=spec.approvers,
                        release_id=ledger.release_id,
                    ),
                    **policies.governance_options(),
                ),
            )
        else:
            members = Members(members=list(spec.approvers))
        eligible = [m for m in members.members if m != self._started_by]
        if len(eligible) < spec.quorum:
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"sign-off of {stage.name} needs {spec.quorum} approval(s) but only "
                f"{len(eligible)} member(s) other than {self._started_by} may approve",
                "signoff",
                stage.name,
            )
        deadline_at = workflow.now() + spec.deadline
        gate = SignoffState(
            committee=spec.committee,
            members=members.members,
            member_roles=members.member_roles,
            quorum=spec.quorum,
            required_roles=spec.required_roles,
            deadline_at=deadline_at,
        )
        status.signoff = gate
        # The committee's go/no-go, built before anyone may approve (approvals wait for the state).
        report = await self._reports.go_no_go(stage, status)
        status.state = StageState.WAITING_APPROVAL
        ledger.status.state = ReleaseState.WAITING_APPROVAL
        ledger.step(waiting_step(stage.name, gate))
        ledger.publish()
        await ledger.audit(
            "signoff.requested",
            "waiting",
            stage=stage.name,
            details={
                "members": members.members,
                "quorum": spec.quorum,
                "deadline": deadline_at.isoformat(),
            },
        )
        go_no_go = (
            f"Go/no-go: {report.headline} — {report.url} ({report.path}; "
            f"`warden report go-no-go {ledger.release_id}`). "
            if report is not None
            else ""
        )
        await ledger.notify(
            f"signoff:{stage.name}",
            f"Sign-off needed: {ledger.release_id} at {stage.name}",
            f"{spec.quorum} approval(s) needed from {', '.join(members.members)} by "
            f"{format_time(deadline_at)}. {go_no_go}"
            f"Evidence: `warden release status {ledger.release_id}`. "
            f"Approve: `warden release approve {ledger.release_id} --stage {stage.name} --as <you>`",
            audience=["committee"],
            stage=stage.name,
            link=report.url if report is not None else None,
        )
        ledger.note(
            "signoff.requested",
            f"waiting for {spec.quorum} approval(s) by {format_time(deadline_at)}",
            stage=stage.name,
        )

        def decided() -> bool:
            return self.decision(stage) is not None or self._control.aborting

        escalate_at = deadline_at - spec.escalate_before
        if spec.escalate_before > timedelta(0) and escalate_at > workflow.now():
            if not await wait_until(decided, escalate_at):
                await ledger.notify(
                    f"signoff-escalation:{stage.name}",
                    f"Sign-off deadline near: {ledger.release_id} at {stage.name}",
                    f"{len(gate.approvals)} of {spec.quorum} approval(s) so far; the stage is "
                    f"rejected automatically at {format_time(deadline_at)}.",
                    severity="warning",
                    audience=["committee", "owner"],
                    stage=stage.name,
                )
                await ledger.record(
                    "signoff.escalated",
                    "sent",
                    "escalation notice sent",
                    stage=stage.name,
                )
        await wait_until(decided, deadline_at)
        self._control.check_abort()
        outcome = self.decision(stage) or "expired"
        gate.outcome = outcome
        status.state = StageState.RUNNING
        ledger.status.state = ReleaseState.PAUSED if self._control.paused else ReleaseState.RUNNING
        ledger.publish()
        names = ", ".join(d.user for d in gate.approvals)
        if outcome == "approved":
            evidence = f"approved by {names} ({len(gate.approvals)}/{spec.quorum})"
            await ledger.record(
                "signoff.approved",
                "approved",
                f"sign-off of {stage.name} complete: {names}",
                stage=stage.name,
                item=(
                    ChecklistKey.SIGNOFF,
                    ItemStatus.PASSED,
                    f"{evidence}; {governance}" if governance else evidence,
                ),
                details={"approvers": [d.user for d in gate.approvals]},
            )
            return
        if outcome == "rejected":
            rejection = gate.rejections[-1]
            reason = f"rejected at {stage.name} by {rejection.user}: {rejection.comment}"
            ledger.item(stage.name, ChecklistKey.SIGNOFF, ItemStatus.FAILED, reason)
            raise ReleaseStop(ReleaseState.REJECTED, reason, "rejection", stage.name)
        reason = (
            f"sign-off deadline passed at {stage.name} with {len(gate.approvals)} of "
            f"{spec.quorum} approval(s)"
        )
        await ledger.record(
            "signoff.expired",
            "rejected",
            stage=stage.name,
            item=(ChecklistKey.SIGNOFF, ItemStatus.FAILED, reason),
        )
        raise ReleaseStop(ReleaseState.REJECTED, reason, "deadline", stage.name)

    def decision(self, stage: Stage) -> str | None:
        """approved, rejected, or None while the stage still waits."""
        spec = stage.signoff
        gate = self._ledger.stage(stage.name).signoff
        if spec is None or gate is None:
            return None
        if len(gate.rejections) >= spec.rejections_to_fail:
            return "rejected"
        if len(gate.approvals) < spec.quorum:
            return None
        covered = {role for d in gate.approvals for role in gate.member_roles.get(d.user, [])}
        if any(role not in covered for role in spec.required_roles):
            return None
        return "approved"

    # -- the approve and reject updates ----------------------------------------------------------

    def validate(self, request: DecisionRequest, approve: bool) -> None:
        """Refuse, with a reason a person can act on, what the stage cannot take now."""
        verb = "approve" if approve else "reject"
        require_payload(request, DecisionRequest, verb)
        ledger = self._ledger
        plan = ledger.input.plan
        if ledger.status.state.ended:
            raise ApplicationError(
                f"release {ledger.release_id} has already ended ({ledger.status.state.value})",
                type="ReleaseEnded",
                non_retryable=True,
            )
        stage = plan.stage(request.stage)
        if stage is None:
            raise ApplicationError(
                f"unknown stage {request.stage!r}; stages: "
                f"{', '.join(s.name for s in plan.stages)}",
                type="UnknownStage",
                non_retryable=True,
            )
        stage_status = ledger.stage(stage.name)
        gate = stage_status.signoff
        if stage.signoff is None:
            raise ApplicationError(
                f"stage {stage.name} has no sign-off",
                type="NotAwaitingApproval",
                non_retryable=True,
            )
        if (
            gate is None
            or gate.outcome is not None
            or stage_status.state != StageState.WAITING_APPROVAL
        ):
            raise ApplicationError(
                f"stage {stage.name} is not awaiting approval (it is {stage_status.state.value})",
                type="NotAwaitingApproval",
                non_retryable=True,
            )
        if request.user == self._started_by:
            raise ApplicationError(
                f"{request.user} started this release and cannot {verb} it (separation of duties)",
                type="SelfApproval",
                non_retryable=True,
            )
        if request.user not in gate.members:
            raise ApplicationError(
                f"{request.user} is not a member of the sign-off for {stage.name} "
                f"(members: {', '.join(gate.members)})",
                type="NotAMember",
                non_retryable=True,
            )
        previous = next((d for d in gate.decisions if d.user == request.user), None)
        if previous is not None and previous.approve != approve:
            # The same decision again is answered (counted once); the other one is refused.
            earlier = "approved" if previous.approve else "rejected"
            raise ApplicationError(
                f"{request.user} already {earlier} {stage.name} and cannot {verb} it now: "
                "each member decides once",
                type="AlreadyDecided",
            )
        if gate.deadline_at is not None and workflow.now() >= gate.deadline_at:
            raise ApplicationError(
                f"the sign-off deadline of {stage.name} has passed",
                type="DeadlinePassed",
                non_retryable=True,
            )
        if not approve and not request.comment.strip():
            raise ApplicationError(
                "a rejection needs a comment saying why", type="CommentRequired", non_retryable=True
            )

    async def decide(self, request: DecisionRequest, approve: bool) -> DecisionOutcome:
        """Count a member's decision once; the same decision again is recorded as a duplicate,
        not counted (the validator refuses a different one)."""
        gate = self._ledger.stage(request.stage).signoff
        assert gate is not None  # the validator guarantees it
        previous = next((d for d in gate.decisions if d.user == request.user), None)
        counted = previous is None
        if counted:
            gate.decisions.append(
                Decision(
                    user=request.user,
                    approve=approve,
                    comment=request.comment,
                    at=workflow.now(),
                    roles=gate.member_roles.get(request.user, []),
                    dev_identity=request.dev_identity,
                )
            )
        verb = "approval" if approve else "rejection"
        stage = self._ledger.input.plan.stage(request.stage)
        assert stage is not None
        decided = self.decision(stage)
        if counted and decided is None and gate.outcome is None:
            self._ledger.step(waiting_step(stage.name, gate))  # state only, no command
        if counted:
            message = (
                f"{verb} by {request.user} recorded ({len(gate.approvals)}/{gate.quorum} approvals)"
            )
        else:
            earlier = "approved" if previous and previous.approve else "rejected"
            message = f"{request.user} already {earlier} this stage; counted once"
        await self._ledger.record(
            f"signoff.{verb}",
            "accepted" if counted else "duplicate",
            message + (f": {request.comment}" if request.comment else ""),
            user=request.user,
            stage=request.stage,
            details={
                "comment": request.comment,
                "devIdentity": request.dev_identity,
                "requestId": request.request_id,
            },
            flush=True,
        )
        return DecisionOutcome(
            stage=request.stage,
            user=request.user,
            counted=counted,
            approvals=len(gate.approvals),
            rejections=len(gate.rejections),
            quorum=gate.quorum,
            decided=decided,
            message=message,
        )

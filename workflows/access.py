"""AccessChangeWorkflow: roles, permissions and the governance file change only with the committee's approval.

A request (grant or revoke a role, or sign off the governance file's current version) waits
for the access committee's quorum, and applies only when approved. Who asked, who approved,
when: all audited. Nobody approves their own request or a change to their own access.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.governance import GovernanceActivities
    from warden.models.governance import (
        AccessChangeRequest,
        AccessChangeStatus,
        AccessDecision,
        ApplyAccessInput,
        GovernanceStatus,
    )
    from warden.models.notice import Notice
    from workflows import policies
    from workflows.common import audit_event, cause, require_payload, send_notice, write_audit

from workflows.trust import Refusal, RequestTrust

ACCESS_DEADLINE = timedelta(days=7)


@workflow.defn
class AccessChangeWorkflow:
    @workflow.init
    def __init__(self, request: AccessChangeRequest) -> None:
        self._request = request
        self._status = AccessChangeStatus(
            change_id=workflow.info().workflow_id,
            kind=request.kind,
            user=request.user,
            role=request.role,
            reason=request.reason,
            requested_by=request.requested_by,
            requested_at=workflow.now(),
        )
        self._ready = False
        self._trust = RequestTrust(request.trust, workflow.info().workflow_id)

    @workflow.run
    async def run(self, request: AccessChangeRequest) -> AccessChangeStatus:
        status = self._status
        await self._audit(
            "access.requested",
            "waiting",
            request.requested_by,
            {
                "kind": request.kind,
                "role": request.role,
                "reason": request.reason,
                "devIdentity": request.dev_identity,
            },
        )
        try:
            governance: GovernanceStatus = await workflow.execute_activity_method(
                GovernanceActivities.governance_status, **policies.governance_options()
            )
        except ActivityError as exc:
            return await self._close("rejected", f"governance file unusable: {cause(exc)}")
        if not governance.configured:
            return await self._close(
                "rejected", "no governance file is configured (WARDEN_GOVERNANCE_FILE)"
            )
        if request.kind != "config-signoff" and request.user not in governance.users:
            return await self._close(
                "rejected", f"{request.user} is not a user in governance file {governance.version}"
            )
        status.committee = governance.access_committee
        status.members = governance.members
        status.quorum = governance.quorum
        status.version = governance.version
        status.digest = governance.digest
        status.deadline_at = workflow.now() + ACCESS_DEADLINE
        eligible = [m for m in governance.members if m not in (request.requested_by, request.user)]
        if len(eligible) < governance.quorum:
            return await self._close(
                "rejected",
                f"committee {governance.access_committee} has {len(eligible)} member(s) who may decide; "
                f"{governance.quorum} needed",
            )
        self._ready = True
        await send_notice(
            Notice(
                key=f"{status.change_id}:requested",
                title=f"Access change needs approval: {self._describe()}",
                text=f"Requested by {request.requested_by}: {request.reason}. Approve: "
                f"`warden access approve {status.change_id} --as <you>`",
                audience=["committee"],
                trace_id=request.trace_id,
            )
        )
        try:
            await workflow.wait_condition(
                lambda: self._decided() is not None, timeout=ACCESS_DEADLINE
            )
        except TimeoutError:
            return await self._close(
                "expired", "no quorum before the deadline; nothing was changed"
            )
        if self._decided() == "rejected":
            return await self._close(
                "rejected", f"rejected by {', '.join(status.rejections)}; nothing was changed"
            )
        status.state = "approved"
        await workflow.execute_activity_method(
            GovernanceActivities.apply_access_change,
            ApplyAccessInput(
                change_id=status.change_id,
                kind=request.kind,
                user=request.user,
                role=request.role,
                reason=request.reason,
                requested_by=request.requested_by,
                approved_by=status.approvals,
                version=status.version,
                digest=status.digest,
            ),
            **policies.governance_write_options(),
        )
        return await self._close(
            "applied", f"approved by {', '.join(status.approvals)} and applied"
        )

    def _describe(self) -> str:
        request = self._request
        if request.kind == "config-signoff":
            return "sign-off of the governance file"
        verb = "grant" if request.kind == "grant" else "revoke"
        return f"{verb} {request.role} {'to' if verb == 'grant' else 'from'} {request.user}"

    def _decided(self) -> str | None:
        if self._status.rejections:
            return "rejected"
        if len(self._status.approvals) >= self._status.quorum:
            return "approved"
        return None

    async def _close(self, state: str, message: str) -> AccessChangeStatus:
        self._status.state = state  # type: ignore[assignment]
        self._status.message = message
        await self._audit(
            f"access.{state}", state, self._request.requested_by, {"message": message}
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    async def _audit(self, action: str, result: str, user: str, details: dict[str, object]) -> None:
        await write_audit(
            [
                audit_event(
                    action,
                    result,
                    user=user,
                    entity=f"access:{self._status.change_id}",
                    release_id=None,
                    trace_id=self._request.trace_id or None,
                    details={"change": self._describe(), **details},
                )
            ]
        )

    @workflow.query
    def status(self) -> AccessChangeStatus:
        return self._status

    @workflow.update
    async def approve(self, decision: AccessDecision) -> AccessChangeStatus:
        decision = await self._admit(decision, "approve", lambda: self._validate(decision))
        self._status.approvals.append(decision.user)
        await self._audit(
            "access.approval",
            "accepted",
            decision.user,
            {"comment": decision.comment, "devIdentity": decision.dev_identity},
        )
        return self._status

    @approve.validator
    def _validate_approve(self, decision: AccessDecision) -> None:
        if self._trust.enforced:
            self._trust.validate(decision, AccessDecision, "a decision")
        else:
            self._validate(decision)

    @workflow.update
    async def reject(self, decision: AccessDecision) -> AccessChangeStatus:
        decision = await self._admit(decision, "reject", lambda: self._validate_rejection(decision))
        self._status.rejections.append(decision.user)
        await self._audit(
            "access.rejection",
            "accepted",
            decision.user,
            {"comment": decision.comment, "devIdentity": decision.dev_identity},
        )
        return self._status

    @reject.validator
    def _validate_reject(self, decision: AccessDecision) -> None:
        if self._trust.enforced:
            self._trust.validate(decision, AccessDecision, "a decision")
        else:
            self._validate_rejection(decision)

    def _validate_rejection(self, decision: AccessDecision) -> None:
        self._validate(decision)
        if not decision.comment.strip():
            raise ApplicationError(
                "a rejection needs a comment saying why", type="CommentRequired", non_retryable=True
            )

    async def _admit(
        self, decision: AccessDecision, verb: str, rules: Callable[[], None]
    ) -> AccessDecision:
        """The decision as the change takes it (claimed or proven), or its audited refusal."""
        if not self._trust.enforced:
            return decision
        try:
            proven = self._trust.admit(
                user=decision.user, proof=decision.proof, action=verb, stage=None, rules=rules
            )
        except Refusal as refusal:
            await self._audit(
                f"access.{verb}.refused",
                "refused",
                decision.user,
                {
                    "reason": refusal.reason,
                    "type": refusal.type,
                    "devIdentity": decision.dev_identity,
                    "proof": "none" if decision.proof is None else "not valid",
                },
            )
            raise self._trust.refused(refusal) from None
        return decision.model_copy(update={"dev_identity": not proven})

    def _validate(self, decision: AccessDecision) -> None:
        require_payload(decision, AccessDecision, "a decision")
        status = self._status
        if not self._ready or status.state != "waiting" or self._decided() is not None:
            raise ApplicationError(
                f"access change {status.change_id} is not waiting for decisions ({status.state})",
                type="NotAwaitingApproval",
                non_retryable=True,
            )
        if decision.user == self._request.requested_by:
            raise ApplicationError(
                f"{decision.user} asked for this change and cannot decide it",
                type="SelfApproval",
                non_retryable=True,
            )
        if decision.user == self._request.user:
            raise ApplicationError(
                f"{decision.user} cannot decide a change to their own access",
                type="SelfApproval",
                non_retryable=True,
            )
        if decision.user not in status.members:
            raise ApplicationError(
                f"{decision.user} is not a member of committee {status.committee} "
                f"(members: {', '.join(status.members)})",
                type="NotAMember",
                non_retryable=True,
            )
        if decision.user in status.approvals or decision.user in status.rejections:
            raise ApplicationError(
                f"{decision.user} has already decided this change",
                type="AlreadyDecided",
                non_retryable=True,
            )
        if status.deadline_at is not None and workflow.now() >= status.deadline_at:
            raise ApplicationError(
                "the deadline of this access change has passed",
                type="DeadlinePassed",
                non_retryable=True,
            )

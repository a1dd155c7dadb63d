"""AccessChangeWorkflow: roles, permissions and the governance file change only with the committee's approval.

A request (grant or revoke a role, or sign off the governance file's current version) waits
for the access committee's quorum, and applies only when approved. Who asked, who approved,
when: all audited. Nobody approves their own request or a change to their own access.

Decisions behave as a release's sign-off does: the same decision again from the same member is
answered and audited as a duplicate, counted once; a different one is refused (`AlreadyDecided`)
and, like every refusal, audited through the `record_refusal` signal. When the change ends, its
outcome (applied, rejected, expired) goes into the memo, where `warden access list` reads it.
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
    from warden.models.release import RefusalRecord
    from workflows import policies
    from workflows.common import (
        audit_event,
        cause,
        first_report,
        require_payload,
        send_notice,
        write_audit,
    )

from workflows.trust import Refusal, RequestTrust

ACCESS_DEADLINE = timedelta(days=7)
#: Changes that record this patch put their outcome into the memo when they end.
OUTCOME_MEMO_PATCH = "access-outcome-memo"
#: Refusals remembered for de-duplication; beyond this many a change stops recording them.
MAX_REFUSALS = 100


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
        self._refusals_seen: set[str] = set()
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
        if workflow.patched(OUTCOME_MEMO_PATCH):
            workflow.upsert_memo({"outcome": state, "message": message})
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
        decision = await self._admit(
            decision, "approve", lambda: self._validate(decision, approve=True)
        )
        return await self._decide(decision, self._status.approvals, "access.approval")

    @approve.validator
    def _validate_approve(self, decision: AccessDecision) -> None:
        if self._trust.enforced:
            self._trust.validate(decision, AccessDecision, "a decision")
        else:
            self._validate(decision, approve=True)

    @workflow.update
    async def reject(self, decision: AccessDecision) -> AccessChangeStatus:
        decision = await self._admit(decision, "reject", lambda: self._validate_rejection(decision))
        return await self._decide(decision, self._status.rejections, "access.rejection")

    @reject.validator
    def _validate_reject(self, decision: AccessDecision) -> None:
        if self._trust.enforced:
            self._trust.validate(decision, AccessDecision, "a decision")
        else:
            self._validate_rejection(decision)

    def _validate_rejection(self, decision: AccessDecision) -> None:
        self._validate(decision, approve=False)
        if not decision.comment.strip():
            raise ApplicationError(
                "a rejection needs a comment saying why", type="CommentRequired", non_retryable=True
            )

    async def _decide(
        self, decision: AccessDecision, counted: list[str], action: str
    ) -> AccessChangeStatus:
        """Count a member's decision once; the same decision again is audited as a duplicate
        (before this, the validator refused it, so no recorded change reaches that branch)."""
        duplicate = decision.user in counted
        if not duplicate:
            counted.append(decision.user)
        await self._audit(
            action,
            "duplicate" if duplicate else "accepted",
            decision.user,
            {"comment": decision.comment, "devIdentity": decision.dev_identity},
        )
        return self._status

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

    @workflow.signal
    async def record_refusal(self, refusal: RefusalRecord) -> None:
        """Refused decisions are audited too; the client that was refused reports it here."""
        if not isinstance(refusal, RefusalRecord):  # a signal cannot be refused; drop a non-record
            workflow.logger.warning("record_refusal signal without a RefusalRecord ignored")
            return
        if not first_report(self._refusals_seen, refusal.refusal_id, MAX_REFUSALS):
            return
        await self._audit(
            f"access.{refusal.request}.refused",
            "refused",
            refusal.user,
            {"reason": refusal.reason, "devIdentity": refusal.dev_identity},
        )

    def _validate(self, decision: AccessDecision, approve: bool) -> None:
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
        other = status.rejections if approve else status.approvals
        if decision.user in other:
            # The same decision again is answered (counted once); the other one is refused.
            earlier = "rejected" if approve else "approved"
            verb = "approve" if approve else "reject"
            raise ApplicationError(
                f"{decision.user} already {earlier} {status.change_id} and cannot {verb} it now: "
                "each member decides once",
                type="AlreadyDecided",
                non_retryable=True,
            )
        if status.deadline_at is not None and workflow.now() >= status.deadline_at:
            raise ApplicationError(
                "the deadline of this access change has passed",
                type="DeadlinePassed",
                non_retryable=True,
            )

"""Who sent a decision: the proof check every approval, rejection, pause, resume and abort passes.

A release (or access change) started with this patch checks requests in the update handler, not
in the validator: a validator cannot write anything, and every refusal — a missing or forged
proof, a non-member, the starter approving their own release — must be in the audit trail, on
the plain Temporal path as on the `warden` and API paths. The handler records the refusal, then
fails the update with a non-retryable error whose details say it is audited already (so the
client does not report it a second time). Workflows started before the patch keep refusing in
their validators, and replay so.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from warden import proofs
    from warden.models.proof import Proof, TrustPolicy
    from workflows.common import require_payload

DECISION_PROOF_PATCH = "decision-proof"
#: In a refusal's error details: the workflow has written the refusal to the audit trail.
AUDITED = "audited"
#: Refusals audited per workflow; beyond this the validator refuses without a trail (a flood).
MAX_AUDITED_REFUSALS = 500
#: Proofs remembered so that none is used twice.
MAX_NONCES = 10_000


class Refusal(Exception):
    """A request refused with a reason a person can act on; `type` is what a client branches on."""

    def __init__(self, type: str, reason: str) -> None:
        super().__init__(reason)
        self.type = type
        self.reason = reason


class RequestTrust:
    def __init__(self, policy: TrustPolicy, target: str) -> None:
        self.enforced = workflow.patched(DECISION_PROOF_PATCH)
        self._policy = policy
        self._target = target
        self._nonces: set[str] = set()
        self.refusals = 0

    def validate(self, request: object, model: type, name: str) -> None:
        """What the validator still refuses: a payload that is not the request at all, a flood."""
        require_payload(request, model, name)
        if self.refusals >= MAX_AUDITED_REFUSALS:
            raise ApplicationError(
                f"{MAX_AUDITED_REFUSALS} requests were refused already; no more are taken",
                type="TooManyRefusals",
                non_retryable=True,
            )

    def admit(
        self,
        *,
        user: str,
        proof: Proof | None,
        action: str,
        stage: str | None,
        rules: Callable[[], None],
    ) -> bool:
        """Raise `Refusal` unless the request may go on; True when its sender is proven (False:
        the name is only claimed). `rules` are the workflow's own checks (membership, state)."""
        if proof is None:
            if self._policy.mode == "verified" and not self._policy.allow_unsigned:
                raise Refusal(
                    "ProofRequired",
                    f"{action} needs a proof of identity issued by Release Warden (the `warden` "
                    "CLI or the HTTP API attach one); a plain Temporal client cannot send one "
                    "unless WARDEN_ALLOW_UNSIGNED_DECISIONS is set",
                )
        else:
            problem = (
                "the proof was used already; ask for a new one"
                if proof.nonce in self._nonces
                else proofs.check(
                    proof,
                    self._policy,
                    user=user,
                    action=action,
                    target=self._target,
                    stage=stage,
                    now=workflow.now(),
                )
            )
            if problem is not None:
                if self._policy.mode == "verified":
                    raise Refusal("InvalidProof", problem)
                proof = None  # dev identity: a name that proves nothing is a claimed name
        try:
            rules()
        except ApplicationError as exc:
            raise Refusal(exc.type or "Refused", exc.message) from None
        if proof is not None and len(self._nonces) < MAX_NONCES:
            self._nonces.add(proof.nonce)
        return proof is not None

    def refused(self, refusal: Refusal) -> ApplicationError:
        """The error the update fails with, once the refusal is in the audit trail."""
        self.refusals += 1
        return ApplicationError(refusal.reason, AUDITED, type=refusal.type, non_retryable=True)

"""Decision proofs from the service side: the trust policy a workflow starts with, and a signed
proof on every decision a face has verified (`warden.proofs`)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from warden.models.governance import AccessDecision
from warden.models.proof import TrustPolicy
from warden.models.release import AbortRequest, ControlRequest, DecisionRequest
from warden.proofs import Issuer, key_id
from warden.settings import Settings

Signed = TypeVar("Signed", DecisionRequest, ControlRequest, AbortRequest, AccessDecision)


@functools.cache
def _issuer(path: Path) -> Issuer:
    return Issuer.from_file(path)


def issuer(settings: Settings) -> Issuer:
    return _issuer(settings.assertion_key_path)


def trust_policy(settings: Settings) -> TrustPolicy:
    """Verified when a governance file is configured; this host's issuer key and the trusted
    ones either way (a release started before the file was configured still takes the proofs
    of decisions made after)."""
    own = issuer(settings)
    issuers = {own.key_id: own.public_key}
    issuers.update({key_id(key): key for key in settings.trusted_issuers})
    if settings.governance_file is None:
        return TrustPolicy(mode="dev", issuers=issuers, allow_unsigned=True)
    return TrustPolicy(
        mode="verified", issuers=issuers, allow_unsigned=settings.allow_unsigned_decisions
    )


def with_proof(
    settings: Settings, request: Signed, *, action: str, target: str, stage: str | None = None
) -> Signed:
    """`request` with a proof that its user sent it, when the face verified that user (a claimed
    dev identity gets none: nothing was checked, so nothing is asserted)."""
    if request.dev_identity or settings.governance_file is None:
        return request
    proof = issuer(settings).sign(
        user=request.user, action=action, target=target, stage=stage, now=datetime.now(UTC)
    )
    return request.model_copy(update={"proof": proof})

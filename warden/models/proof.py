"""Proof that Release Warden issued a request: a short-lived assertion signed by an issuer key.

The `warden` CLI and the HTTP API attach one to every approval, rejection, pause, resume and
abort they send, after they checked the caller's token. The worker checks it in the workflow:
a plain Temporal client, which never saw a token, cannot make one. A proof carries no secret —
it is a signature over who asks what, for which release and stage, until when — so it may sit in
the workflow's history.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from warden.models.common import Record, StrictModel

KEY_ID_PATTERN = r"^[0-9a-f]{16}$"


class Proof(StrictModel):
    issuer: str = Field(pattern=KEY_ID_PATTERN, description="Id of the issuer's signing key.")
    user: str = Field(min_length=1, max_length=200)
    action: str = Field(min_length=1, max_length=50, description="e.g. approve, pause, abort.")
    target: str = Field(min_length=1, max_length=300, description="Release or access change id.")
    stage: str | None = Field(default=None, max_length=100)
    expires_at: datetime
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")
    signature: str = Field(min_length=1, max_length=200, description="Ed25519, urlsafe base64.")

    def signed_bytes(self) -> bytes:
        """What the signature covers: every field but the signature, canonically."""
        return canonical(
            self.issuer,
            self.user,
            self.action,
            self.target,
            self.stage,
            self.expires_at,
            self.nonce,
        )


def canonical(
    issuer: str,
    user: str,
    action: str,
    target: str,
    stage: str | None,
    expires_at: datetime,
    nonce: str,
) -> bytes:
    fields = {
        "issuer": issuer,
        "user": user,
        "action": action,
        "target": target,
        "stage": stage,
        "expires_at": expires_at.astimezone(UTC).isoformat(),
        "nonce": nonce,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


class TrustPolicy(Record):
    """How a workflow checks who sent a decision. `dev`: names are claimed (no governance file);
    `verified`: every decision needs a proof from one of `issuers` (key id → public key), unless
    `allow_unsigned` (an explicit setting for teams whose admins decide with the plain
    `temporal` CLI), and then an unsigned decision is counted but marked as claimed."""

    mode: Literal["dev", "verified"] = "dev"
    issuers: dict[str, str] = Field(default_factory=dict)
    allow_unsigned: bool = False

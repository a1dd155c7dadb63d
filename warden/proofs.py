"""Issuing and checking proofs (`warden.models.proof.Proof`) with Ed25519 keys.

The issuer key is a file (`WARDEN_ASSERTION_KEY`, default `<state dir>/assertion.key`, made on
first use, mode 0600) on the machines that run the API or the `warden` CLI against Temporal
directly. Workers and workflows need only its public key, which travels in the workflow's input
(`TrustPolicy.issuers`); more public keys can be trusted with `WARDEN_TRUSTED_ISSUERS`.
`check` is pure computation, so the workflow runs it deterministically.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from warden.models.proof import Proof, TrustPolicy, canonical

#: How long a proof is good for: long enough for a slow network, too short to be kept and reused.
PROOF_TTL = timedelta(minutes=5)
#: How far ahead of the workflow's clock an issuer's clock may run.
CLOCK_SKEW = timedelta(minutes=1)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public_key: str) -> str:
    return hashlib.sha256(_unb64(public_key)).hexdigest()[:16]


class Issuer:
    """Signs proofs for users whose identity the caller has already checked."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = _b64(raw)
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_file(cls, path: Path) -> Issuer:
        """The key in `path`, made there (readable by its owner only) when there is none yet."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                data = path.read_bytes()
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
                data = pem
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def sign(
        self,
        *,
        user: str,
        action: str,
        target: str,
        stage: str | None,
        now: datetime,
    ) -> Proof:
        expires_at = now + PROOF_TTL
        nonce = secrets.token_hex(16)
        message = canonical(self.key_id, user, action, target, stage, expires_at, nonce)
        return Proof(
            issuer=self.key_id,
            user=user,
            action=action,
            target=target,
            stage=stage,
            expires_at=expires_at,
            nonce=nonce,
            signature=_b64(self._key.sign(message)),
        )


def check(
    proof: Proof,
    policy: TrustPolicy,
    *,
    user: str,
    action: str,
    target: str,
    stage: str | None,
    now: datetime,
) -> str | None:
    """Why `proof` does not show that `user` sent `action` on `target` (and `stage`) now, or None."""
    public_key = policy.issuers.get(proof.issuer)
    if public_key is None:
        return f"the proof was issued by key {proof.issuer}, which this release does not trust"
    try:
        Ed25519PublicKey.from_public_bytes(_unb64(public_key)).verify(
            _unb64(proof.signature), proof.signed_bytes()
        )
    except (InvalidSignature, ValueError):
        return "the proof's signature does not match what it says"
    if proof.user != user:
        return f"the proof was issued to {proof.user}, not {user}"
    if proof.action != action:
        return f"the proof is for {proof.action}, not {action}"
    if proof.target != target:
        return f"the proof is for {proof.target}, not {target}"
    if proof.stage != stage:
        return f"the proof is for stage {proof.stage or '(none)'}, not {stage or '(none)'}"
    if now > proof.expires_at:
        return f"the proof expired at {proof.expires_at.isoformat()}"
    if proof.expires_at - now > PROOF_TTL + CLOCK_SKEW:
        return "the proof's expiry is further ahead than any issuer gives"
    return None

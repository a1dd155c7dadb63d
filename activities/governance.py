"""Governance: committee membership, the governance file's sign-off, approved access changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from warden.models.governance import (
    AccessGrant,
    ApplyAccessInput,
    ConfigSignoff,
    GovernanceFile,
    GovernanceStatus,
)
from warden.models.signoff import Members, MembersInput
from warden.stores.governance import GovernanceError, GovernanceStore, load_governance


class GovernanceActivities:
    def __init__(self, governance_file: Path | None, store: GovernanceStore) -> None:
        self._file = governance_file
        self._store = store

    def close(self) -> None:
        self._store.close()

    def _load(self) -> GovernanceFile:
        if self._file is None:
            raise ApplicationError(
                "no governance file is configured (set WARDEN_GOVERNANCE_FILE)",
                type="GateConfigError",
                non_retryable=True,
            )
        try:
            return load_governance(self._file)
        except GovernanceError as exc:
            raise ApplicationError(str(exc), type="GateConfigError", non_retryable=True) from None

    @activity.defn(name="resolve_members")
    async def resolve_members(self, input: MembersInput) -> Members:
        if not input.committee:
            return Members(members=list(input.approvers))
        governance = self._load()
        committee = governance.committee(input.committee)
        if committee is None:
            raise ApplicationError(
                f"committee {input.committee!r} is not in {self._file}",
                type="GateConfigError",
                non_retryable=True,
            )
        grants = await asyncio.to_thread(self._store.grants)
        members = list(committee.member_names())
        # Access changes approved by the committee add (or remove) members on top of the file.
        role = f"committee-member:{committee.name}"
        for grant in grants:
            if grant.role == role and grant.grant and grant.user not in members:
                members.append(grant.user)
            elif grant.role == role and not grant.grant and grant.user in members:
                members.remove(grant.user)
        members += [a for a in input.approvers if a not in members]
        return Members(
            members=members,
            member_roles={m.user: list(m.roles) for m in committee.members},
            governance_version=governance.version,
        )

    @activity.defn(name="governance_status")
    async def governance_status(self) -> GovernanceStatus:
        if self._file is None:
            return GovernanceStatus(configured=False)
        governance = self._load()
        digest = governance.digest()
        committee = governance.committee(governance.access_committee)
        assert committee is not None  # the model validates it
        signoff = await asyncio.to_thread(self._store.signoff_for, digest)
        return GovernanceStatus(
            configured=True,
            version=governance.version,
            digest=digest,
            access_committee=committee.name,
            members=committee.member_names(),
            quorum=committee.quorum,
            signoff=signoff,
            users=[u.name for u in governance.users],
        )

    @activity.defn(name="apply_access_change")
    async def apply_access_change(self, input: ApplyAccessInput) -> bool:
        """Idempotent by change id: a retried activity applies the change once."""
        now = datetime.now(UTC)
        if input.kind == "config-signoff":
            assert input.version and input.digest
            return await asyncio.to_thread(
                self._store.record_signoff,
                ConfigSignoff(
                    change_id=input.change_id,
                    version=input.version,
                    digest=input.digest,
                    requested_by=input.requested_by,
                    approved_by=input.approved_by,
                    signed_at=now,
                ),
            )
        assert input.user and input.role
        return await asyncio.to_thread(
            self._store.apply_grant,
            AccessGrant(
                change_id=input.change_id,
                user=input.user,
                role=input.role,
                grant=input.kind == "grant",
                requested_by=input.requested_by,
                approved_by=input.approved_by,
                reason=input.reason,
                applied_at=now,
            ),
        )

"""Governance look-ups: who sits on a committee, in which roles, per the governance file."""

from __future__ import annotations

from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from warden.models.signoff import Members, MembersInput


class GovernanceActivities:
    def __init__(self, governance_file: Path | None) -> None:
        self._file = governance_file

    @activity.defn(name="resolve_members")
    async def resolve_members(self, input: MembersInput) -> Members:
        if not input.committee:
            return Members(members=list(input.approvers))
        if self._file is None:
            raise ApplicationError(
                f"sign-off names committee {input.committee!r} but no governance file is configured "
                "(set WARDEN_GOVERNANCE_FILE)",
                type="GateConfigError",
                non_retryable=True,
            )
        from warden.governance import GovernanceError, load_governance

        try:
            governance = load_governance(self._file)
        except GovernanceError as exc:
            raise ApplicationError(str(exc), type="GateConfigError", non_retryable=True) from None
        committee = governance.committee(input.committee)
        if committee is None:
            raise ApplicationError(
                f"committee {input.committee!r} is not in {self._file}",
                type="GateConfigError",
                non_retryable=True,
            )
        members = list(dict.fromkeys([*committee.member_names(), *input.approvers]))
        return Members(
            members=members,
            member_roles={m.user: list(m.roles) for m in committee.members},
            governance_version=governance.version,
        )

"""The governance file: users, roles, committees. Validated like a plan; changed only by sign-off."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from warden.models.common import Record, StrictModel, short_repr
from warden.models.proof import Proof, TrustPolicy

BASE_ROLES = ("release-manager", "operator", "viewer", "admin")
ROLE_PATTERN = (
    r"^(release-manager|operator|viewer|admin|committee-member:[a-z0-9][a-z0-9\-]{0,62})$"
)
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@\-]{0,99}$"


def check_role(role: str) -> str:
    """A role name, or a ValueError that lists the roles there are (never the pattern)."""
    import re

    if not re.fullmatch(ROLE_PATTERN, role):  # re.match's '$' allows a trailing newline
        raise ValueError(
            f"unknown role {short_repr(role)}; roles: {', '.join(BASE_ROLES)}, "
            "committee-member:<committee> (e.g. committee-member:release-board)"
        )
    return role


class GovernanceUser(StrictModel):
    name: str = Field(pattern=USER_PATTERN)
    roles: list[str] = Field(
        default_factory=list,
        description="release-manager, operator, viewer, admin, committee-member:<committee>.",
    )
    token_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the user's API token (`warden token new` prints both).",
    )
    email: str | None = None

    @model_validator(mode="after")
    def _roles(self) -> GovernanceUser:
        for role in self.roles:
            check_role(role)
        return self


class CommitteeMember(StrictModel):
    user: str = Field(pattern=USER_PATTERN)
    roles: list[str] = Field(
        default_factory=list,
        description="Seats on the committee, e.g. after-sales, product, security, tech.",
    )


class Committee(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,62}$")
    description: str = ""
    members: list[CommitteeMember] = Field(min_length=1)
    quorum: int = Field(
        default=1, ge=1, description="Approvals an access change or a config sign-off needs."
    )

    def member_names(self) -> list[str]:
        return [m.user for m in self.members]


class GovernanceFile(StrictModel):
    version: str = Field(
        min_length=1,
        max_length=100,
        description="Bump on every change; a new version needs sign-off.",
    )
    access_committee: str = Field(
        description="The committee that approves access changes and signs this file off."
    )
    users: list[GovernanceUser] = Field(default_factory=list)
    committees: list[Committee] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> GovernanceFile:
        names = [u.name for u in self.users]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"user(s) listed twice: {', '.join(dupes)}")
        committees = {c.name for c in self.committees}
        if self.access_committee not in committees:
            raise ValueError(
                f"access_committee {self.access_committee!r} is not a committee in this file"
            )
        known = set(names)
        for committee in self.committees:
            for member in committee.members:
                if member.user not in known:
                    raise ValueError(f"committee {committee.name}: {member.user!r} is not in users")
            if committee.quorum > len(committee.members):
                raise ValueError(
                    f"committee {committee.name}: quorum {committee.quorum} exceeds its members"
                )
        for user in self.users:
            for role in user.roles:
                if role.startswith("committee-member:") and role.split(":", 1)[1] not in committees:
                    raise ValueError(f"user {user.name}: role {role} names an unknown committee")
        return self

    def committee(self, name: str) -> Committee | None:
        return next((c for c in self.committees if c.name == name), None)

    def user(self, name: str) -> GovernanceUser | None:
        return next((u for u in self.users if u.name == name), None)

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


class AccessGrant(Record):
    """A role given or taken away by an approved access change."""

    change_id: str
    user: str
    role: str
    grant: bool = True
    requested_by: str
    approved_by: list[str]
    reason: str
    applied_at: datetime


class ConfigSignoff(Record):
    """The committee's sign-off of one version of the governance file."""

    change_id: str
    version: str
    digest: str
    requested_by: str
    approved_by: list[str]
    signed_at: datetime


class AccessChangeRequest(StrictModel):
    """Input of AccessChangeWorkflow: grant/revoke a role, or sign off the governance file's version."""

    kind: Literal["grant", "revoke", "config-signoff"] = "grant"
    user: str | None = Field(default=None, pattern=USER_PATTERN)
    role: str | None = Field(
        default=None,
        description="release-manager, operator, viewer, admin or committee-member:<committee>.",
    )
    reason: str = Field(min_length=1, max_length=2000)
    requested_by: str = Field(pattern=USER_PATTERN)
    trace_id: str = ""
    dev_identity: bool = False
    trust: TrustPolicy = Field(default_factory=TrustPolicy)

    @field_validator("role")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        return None if value is None else check_role(value)

    @model_validator(mode="after")
    def _complete(self) -> AccessChangeRequest:
        if self.kind in ("grant", "revoke") and (not self.user or not self.role):
            raise ValueError("an access change needs --user and --role")
        return self


class GovernanceStatus(Record):
    """The governance file as the worker sees it, and whether its version is signed off."""

    configured: bool
    version: str | None = None
    digest: str | None = None
    access_committee: str | None = None
    members: list[str] = Field(default_factory=list)
    quorum: int = 1
    signoff: ConfigSignoff | None = None
    users: list[str] = Field(default_factory=list)


class AccessDecision(StrictModel):
    """Body of AccessChangeWorkflow's `approve` and `reject` updates."""

    user: str = Field(pattern=USER_PATTERN)
    comment: str = Field(default="", max_length=2000)
    dev_identity: bool = False
    proof: Proof | None = None


class AccessChangeStatus(Record):
    change_id: str
    kind: str
    user: str | None = None
    role: str | None = None
    reason: str
    requested_by: str
    requested_at: datetime
    state: Literal["waiting", "approved", "applied", "rejected", "expired"] = "waiting"
    committee: str | None = None
    members: list[str] = Field(default_factory=list)
    quorum: int = 1
    approvals: list[str] = Field(default_factory=list)
    rejections: list[str] = Field(default_factory=list)
    deadline_at: datetime | None = None
    version: str | None = None
    digest: str | None = None
    message: str = ""


class AccessDecisionOutcome(Record):
    """What an approval or rejection of an access change did (as `DecisionOutcome` for a release)."""

    change_id: str
    user: str
    approve: bool
    counted: bool = Field(description="False when the same member had already decided the same.")
    approvals: int
    rejections: int
    quorum: int
    state: str
    message: str


class AccessChangeRow(Record):
    """One row of `warden access list`: the change and how it ended (or that it waits)."""

    change_id: str
    kind: str | None = None
    user: str | None = None
    role: str | None = None
    requested_by: str | None = None
    outcome: str = Field(
        description="waiting, applied, rejected or expired; terminated and the like when the "
        "workflow was stopped from outside."
    )
    message: str = ""
    started_at: datetime | None = None
    closed_at: datetime | None = None


class ApplyAccessInput(Record):
    change_id: str
    kind: Literal["grant", "revoke", "config-signoff"]
    user: str | None = None
    role: str | None = None
    reason: str
    requested_by: str
    approved_by: list[str]
    version: str | None = None
    digest: str | None = None

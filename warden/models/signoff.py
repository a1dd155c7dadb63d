"""Committee sign-off of a stage: who may approve, how many, by when."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field, model_validator

from warden.models.common import Duration, Record, StrictModel


class SignoffSpec(StrictModel):
    """Sign-off gate (checklist item 4). Members come from `approvers` and/or a governance committee."""

    committee: str | None = Field(default=None, description="Committee in the governance file.")
    approvers: list[str] = Field(default_factory=list, description="Approvers named in the plan.")
    quorum: int = Field(default=1, ge=1, le=100)
    required_roles: list[str] = Field(
        default_factory=list,
        description="Committee roles (e.g. security) that must be among the approvers.",
    )
    deadline: Duration = Field(default=timedelta(hours=24))
    escalate_before: Duration = Field(
        default=timedelta(hours=1),
        description="Send an escalation notice this long before the deadline.",
    )
    rejections_to_fail: int = Field(default=1, ge=1, description="Rejections that fail the stage.")

    @model_validator(mode="after")
    def _has_members(self) -> SignoffSpec:
        if not self.committee and not self.approvers:
            raise ValueError("name a 'committee' or list 'approvers'")
        if len(set(self.approvers)) != len(self.approvers):
            raise ValueError("'approvers' lists someone twice")
        if self.approvers and not self.committee and self.quorum > len(self.approvers):
            raise ValueError(
                f"quorum {self.quorum} cannot be reached by {len(self.approvers)} approver(s)"
            )
        if self.deadline <= timedelta(0):
            raise ValueError("deadline must be greater than zero")
        return self


class Decision(Record):
    user: str
    approve: bool
    comment: str = ""
    at: datetime
    roles: list[str] = Field(default_factory=list)
    dev_identity: bool = False


class SignoffState(Record):
    committee: str | None = None
    members: list[str] = Field(default_factory=list)
    member_roles: dict[str, list[str]] = Field(default_factory=dict)
    quorum: int = 1
    required_roles: list[str] = Field(default_factory=list)
    deadline_at: datetime | None = None
    decisions: list[Decision] = Field(default_factory=list)
    outcome: str | None = None  # approved | rejected | expired

    @property
    def approvals(self) -> list[Decision]:
        return [d for d in self.decisions if d.approve]

    @property
    def rejections(self) -> list[Decision]:
        return [d for d in self.decisions if not d.approve]


class MembersInput(Record):
    committee: str | None = None
    approvers: list[str] = Field(default_factory=list)
    release_id: str = ""


class Members(Record):
    members: list[str]
    member_roles: dict[str, list[str]] = Field(default_factory=dict)
    governance_version: str | None = None

"""Bodies the HTTP API accepts and answers with, beside the shared models it serves as they are."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, ValidatorFunctionWrapHandler, WrapValidator

from warden.api.strict import IsoDatetime
from warden.models.audit import AuditEventCreate
from warden.models.common import Record, StrictModel
from warden.models.flags import FlagState
from warden.models.governance import ROLE_PATTERN, USER_PATTERN, AccessChangeRow
from warden.models.plan import VERSION_PATTERN, ReleasePlan
from warden.models.release import ReleaseSummary

#: Request and trace ids: visible ASCII, no spaces, as long as the audit trail keeps them.
ID_PATTERN = r"^[!-~]{1,200}$"
#: Workflow ids of releases (`release-<service>-<version>`) and anything similar a caller may ask about.
RELEASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,299}$"


# -- errors ------------------------------------------------------------------------------------


class FieldProblem(Record):
    """One invalid field: where it is (`body`, `query`, `path`), its dotted name, what is wrong."""

    location: str
    field: str
    message: str


class ErrorDetail(Record):
    type: str = Field(
        description="What kind of error: e.g. SelfApproval, UnknownRelease, ValidationError."
    )
    message: str = Field(description="One readable sentence saying what went wrong and what to do.")
    fields: list[FieldProblem] | None = Field(
        default=None, description="Validation errors only: every bad field."
    )
    request_id: str | None = Field(
        default=None, description="The request's X-Request-Id, for the logs."
    )


class ErrorBody(Record):
    """Every error the API answers with, whatever its status."""

    error: ErrorDetail


# -- releases ----------------------------------------------------------------------------------


def _readable_plan(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A plan whose values have the wrong shape deep inside is a 422, never a server error."""
    try:
        return handler(value)
    except (TypeError, KeyError, AttributeError, IndexError) as exc:
        raise ValueError(f"the plan cannot be read ({type(exc).__name__}: {exc})") from None


Plan = Annotated[ReleasePlan, WrapValidator(_readable_plan)]


class ReleaseCreate(StrictModel):
    """Start a release: the plan as JSON (the same document as the YAML plan file)."""

    plan: Plan
    trace_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Trace id carried through every call and audit event; default: the request's X-Trace-Id.",
    )
    rerun: StrictBool = Field(
        default=False, description="Start a version again after its earlier run ended."
    )


class ReleaseList(Record):
    releases: list[ReleaseSummary]


class DecisionCreate(StrictModel):
    """Approve or reject a stage's sign-off. The decider is the authenticated caller, never a name in the body."""

    stage: str = Field(min_length=1, max_length=100)
    comment: str = Field(default="", max_length=5000, description="Why; required for a rejection.")


class ControlCreate(StrictModel):
    """Pause or resume a release."""

    reason: str = Field(default="", max_length=5000)


class AbortCreate(StrictModel):
    reason: str = Field(min_length=1, max_length=5000)


# -- audit -------------------------------------------------------------------------------------


class AuditEventPost(AuditEventCreate):
    """`AuditEventCreate` as the API takes it: `timestamp` only as ISO 8601 text, as the schema says
    (pydantic alone would also read a JSON number as seconds since 1970)."""

    timestamp: IsoDatetime | None = None


# -- system ------------------------------------------------------------------------------------


class HealthPublic(Record):
    status: Literal["ok"] = "ok"
    env: str
    temporal: str = Field(
        description="`ok`, `not connected` (no request needed Temporal yet) or `unreachable: ...`."
    )
    dev_endpoints: bool
    ops_endpoints: bool
    version: str


# -- operational and dev endpoints -------------------------------------------------------------


class PollerPublic(Record):
    identity: str
    last_access_time: datetime | None = None
    rate_per_second: float = 0.0


class TaskQueueKindPublic(Record):
    pollers: list[PollerPublic] = Field(default_factory=list)
    backlog: int | None = Field(
        default=None, description="Approximate number of tasks waiting for a worker."
    )
    backlog_age_s: float | None = Field(
        default=None, description="Age of the oldest waiting task, in seconds."
    )
    add_rate: float | None = None
    dispatch_rate: float | None = None


class TaskQueuePublic(Record):
    namespace: str
    task_queue: str
    workflow: TaskQueueKindPublic
    activity: TaskQueueKindPublic


class ForceRestoreCreate(StrictModel):
    reason: str = Field(
        min_length=1, max_length=2000, description="Why the flags are restored by hand."
    )
    environments: list[str] | None = Field(
        default=None,
        max_length=50,
        description="Only these flag environments; default: every environment the release changed.",
    )


class ForceRestorePublic(Record):
    release_id: str
    verified: bool = Field(
        description="True only when every restored flag read back exactly as captured."
    )
    environments: list[str]
    flags: list[str]
    restored: list[FlagState] = Field(default_factory=list)
    mismatches: list[str] = Field(default_factory=list)
    source: Literal["status", "history"] = Field(
        description="Where the captured state came from: the release's status query, or its event history."
    )


class SeedCreate(StrictModel):
    """Start the sample support-desk release (examples/plans/support-desk.yaml)."""

    version: str | None = Field(
        default=None,
        pattern=VERSION_PATTERN,
        description="Default: a fresh `0.0.0-seed.<time>` version.",
    )
    base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        max_length=500,
        description="Point every stage at this URL; default: the plan's SUPPORT_DESK_*_URL values.",
    )
    create_flags: StrictBool = Field(
        default=True,
        description="flagd-file backend only: create missing flag files with the plan's flags off.",
    )


# -- identity, flags, access and governance -------------------------------------------------------


class WhoAmI(Record):
    """The caller as the API sees them: the same checks every other endpoint makes."""

    user: str
    roles: list[str]
    dev_identity: bool
    mode: Literal["dev", "verified"]


class FlagChangeCreate(StrictModel):
    """The kill switch: serve a flag to `percent`% in one environment, now."""

    percent: int = Field(ge=0, le=100)
    reason: str = Field(min_length=1, max_length=2000, description="Recorded in the audit trail.")


class FlagList(Record):
    flags: list[FlagState]


class AccessChangeCreate(StrictModel):
    """Ask the access committee to grant or revoke a role; the requester is the caller."""

    kind: Literal["grant", "revoke"] = "grant"
    user: str = Field(pattern=USER_PATTERN, description="Whose access changes.")
    role: str = Field(
        pattern=ROLE_PATTERN,
        description="release-manager, operator, viewer, admin, committee-member:<committee>.",
    )
    reason: str = Field(min_length=1, max_length=2000)


class SignoffCreate(StrictModel):
    """Ask the access committee to sign off the governance file's current version."""

    reason: str = Field(min_length=1, max_length=2000)


class AccessDecisionCreate(StrictModel):
    comment: str = Field(default="", max_length=2000, description="Why; required for a rejection.")


class AccessChangeCreated(Record):
    change_id: str


class AccessChangeList(Record):
    changes: list[AccessChangeRow]

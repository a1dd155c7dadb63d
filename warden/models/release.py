"""What flows in and out of a release workflow: its input, the requests people send it, its state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from warden.models.common import Record, StrictModel
from warden.models.contract import ContractReport
from warden.models.flags import FlagSnapshot, FlagStepRecord, RestoreReport
from warden.models.metrics import ChecksReport
from warden.models.plan import ReleasePlan
from warden.models.proof import Proof, TrustPolicy
from warden.models.reports import ReportSummary
from warden.models.signoff import SignoffState
from warden.models.smoke import SmokeReport


class ReleaseOptions(Record):
    """Deployment facts the workflow needs but must not read itself (it never reads the environment)."""

    search_attributes: bool = False
    flag_backend: str = "flagd-file"
    require_governance: bool = False
    trust: TrustPolicy = Field(default_factory=TrustPolicy)


class ReleaseInput(Record):
    plan: ReleasePlan
    started_by: str
    trace_id: str
    request_id: str | None = None
    dev_identity: bool = False
    governance_version: str | None = None
    options: ReleaseOptions = Field(default_factory=ReleaseOptions)


class ReleaseState(StrEnum):
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    PAUSED = "paused"
    ROLLING_BACK = "rolling_back"
    PROMOTED = "promoted"
    FAILED = "failed"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"

    @property
    def ended(self) -> bool:
        return self in ENDED_STATES


ENDED_STATES = frozenset(
    {
        ReleaseState.PROMOTED,
        ReleaseState.FAILED,
        ReleaseState.REJECTED,
        ReleaseState.ROLLED_BACK,
        ReleaseState.ABORTED,
    }
)


class StageState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    PROMOTED = "promoted"
    FAILED = "failed"
    SKIPPED = "skipped"


class ItemStatus(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"
    #: Passed, but something only notified tripped (a notify-only check, an alert): not a ✓.
    WARNING = "warning"


class ChecklistKey(StrEnum):
    """The source checklist, in its order."""

    CONTRACT = "contract_tests"
    FLAGS = "flags_present"
    THRESHOLDS = "thresholds_normal"
    SIGNOFF = "signoff"
    ROLLBACK_PLAN = "rollback_plan"


CHECKLIST_TITLES = {
    ChecklistKey.CONTRACT: "Every interface passes its contract/schema tests",
    ChecklistKey.FLAGS: "The plan's flags exist in the flag backend",
    ChecklistKey.THRESHOLDS: "Every monitored threshold is normal",
    ChecklistKey.SIGNOFF: "Signed off by the governance committee",
    ChecklistKey.ROLLBACK_PLAN: "Rollback plan ready: flag state captured and read back",
}


class ChecklistItem(Record):
    key: ChecklistKey
    title: str
    status: ItemStatus = ItemStatus.PENDING
    evidence: str = ""
    at: datetime | None = None


class StageStatus(Record):
    name: str
    environment: str
    base_url: str
    state: StageState = StageState.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    checklist: list[ChecklistItem] = Field(default_factory=list)
    smoke: SmokeReport | None = None
    contract: ContractReport | None = None
    checks: ChecksReport | None = None
    guards: list[ChecksReport] = Field(default_factory=list)
    flag_steps: list[FlagStepRecord] = Field(default_factory=list)
    signoff: SignoffState | None = None
    go_no_go: ReportSummary | None = Field(
        default=None, description="The go/no-go report built when the sign-off started waiting."
    )
    failure: str | None = None

    def item(self, key: ChecklistKey) -> ChecklistItem:
        return next(i for i in self.checklist if i.key == key)


class TimelineEvent(Record):
    at: datetime
    stage: str | None = None
    action: str
    message: str
    user: str | None = None


class Alert(Record):
    check: str
    stage: str
    since: datetime
    message: str
    active: bool = True


class RollbackRecord(Record):
    reason: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None = None
    report: RestoreReport | None = None
    state: str = "running"  # running | completed | retrying


class ReleaseResult(Record):
    release_id: str
    outcome: ReleaseState
    reason: str = ""
    failed_stage: str | None = None
    promoted_stages: list[str] = Field(default_factory=list)
    rollback: RollbackRecord | None = None
    finished_at: datetime | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome == ReleaseState.PROMOTED else 1


class ReleaseStatus(Record):
    """The whole state of a release, as the `status` query returns it."""

    release_id: str
    service: str
    version: str
    owner: str
    started_by: str
    trace_id: str
    started_at: datetime
    state: ReleaseState
    current_stage: str | None = None
    current_step: str = ""
    paused: bool = False
    pause_reason: str | None = None
    stages: list[StageStatus] = Field(default_factory=list)
    snapshots: list[FlagSnapshot] = Field(default_factory=list)
    flags_changed: list[str] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)
    rollback: RollbackRecord | None = None
    timeline: list[TimelineEvent] = Field(default_factory=list)
    result: ReleaseResult | None = None
    reports: list[ReportSummary] = Field(
        default_factory=list, description="Release notes and retrospective, once written."
    )


class DecisionRequest(StrictModel):
    """Body of the `approve` and `reject` updates."""

    stage: str = Field(min_length=1, max_length=100)
    user: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=5000)
    dev_identity: bool = False
    request_id: str | None = Field(default=None, max_length=200)
    proof: Proof | None = Field(
        default=None, description="Issued by the warden CLI or the API (docs/governance.md)."
    )


class DecisionOutcome(Record):
    stage: str
    user: str
    counted: bool
    approvals: int
    rejections: int
    quorum: int
    decided: str | None = None
    message: str


class ControlRequest(StrictModel):
    """Body of the `pause` and `resume` updates."""

    user: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=5000)
    dev_identity: bool = False
    request_id: str | None = Field(default=None, max_length=200)
    proof: Proof | None = Field(
        default=None, description="Issued by the warden CLI or the API (docs/governance.md)."
    )


class AbortRequest(StrictModel):
    user: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=5000)
    dev_identity: bool = False
    request_id: str | None = Field(default=None, max_length=200)
    proof: Proof | None = Field(
        default=None, description="Issued by the warden CLI or the API (docs/governance.md)."
    )


class ControlOutcome(Record):
    state: ReleaseState
    message: str


class RefusalRecord(StrictModel):
    """A request the workflow refused (validator rejection), sent back to be audited."""

    refusal_id: str = Field(min_length=1, max_length=100)
    request: str = Field(min_length=1, max_length=50)
    user: str = Field(min_length=1, max_length=200)
    reason: str = Field(max_length=2000)
    stage: str | None = Field(default=None, max_length=100)
    dev_identity: bool = False
    request_id: str | None = Field(default=None, max_length=200)


class ReleaseSummary(Record):
    """One row of `warden release list`."""

    release_id: str
    service: str = ""
    version: str = ""
    owner: str = ""
    started_by: str = ""
    state: str = ""
    stage: str = ""
    workflow_status: str = ""
    started_at: datetime | None = None
    closed_at: datetime | None = None


class ReleaseStarted(Record):
    """A release just started: what the CLI prints and the API answers."""

    release_id: str
    run_id: str
    trace_id: str
    started_by: str
    dev_identity: bool = False
    #: Flags that already serve as much as some ramp steps: those steps will be skipped.
    warnings: list[str] = Field(default_factory=list)

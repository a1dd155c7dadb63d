"""The reports the committee decides on: go/no-go, daily pilot health, release notes, the
retrospective and the monthly governance review.

Each report is one pydantic model: its JSON form is the model's JSON, its schema the model's
JSON Schema (`warden report schema KIND`), and the Markdown and HTML forms are rendered from the
same object, so the three carry the same facts. The plan keys that shape them
(`reports.go_no_go`, `reports.pilot_health`) are here too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator

from warden.models.common import Duration, Record, StrictModel


class ReportKind(StrEnum):
    GO_NO_GO = "go-no-go"
    PILOT_HEALTH = "pilot-health"
    RELEASE_NOTES = "release-notes"
    RETROSPECTIVE = "retrospective"
    GOVERNANCE_REVIEW = "governance-review"


#: Reports about one release (`GET /releases/{id}/reports/{kind}`).
RELEASE_REPORTS = (
    ReportKind.GO_NO_GO,
    ReportKind.PILOT_HEALTH,
    ReportKind.RELEASE_NOTES,
    ReportKind.RETROSPECTIVE,
)

ReportFormat = Literal["md", "json", "html"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("md", "json", "html")

# -- plan keys ---------------------------------------------------------------------------------

BlockingCondition = Literal[
    "checklist-failed",
    "open-alert",
    "guard-breach",
    "alert-raised",
    "contract-failure",
    "inconclusive-check",
    "recent-rollback",
    "kpi-missed",
]


def _default_blocking() -> list[BlockingCondition]:
    return ["checklist-failed", "open-alert"]


class GoNoGoSpec(StrictModel):
    """The go/no-go report built when a stage's sign-off starts waiting (docs/reports.md)."""

    stages: list[str] | None = Field(
        default=None,
        description="Stages whose sign-off gets a go/no-go report; default: the pilot stages.",
    )
    threshold: int = Field(
        default=80, ge=0, le=100, description="Readiness score at or above which it says Go."
    )
    blocking: list[BlockingCondition] = Field(
        default_factory=_default_blocking,
        description=(
            "Conditions that force No-go whatever the score: checklist-failed, open-alert, "
            "guard-breach, alert-raised, contract-failure, inconclusive-check, recent-rollback, "
            "kpi-missed."
        ),
    )
    kpis: list[str] = Field(
        default_factory=list,
        description=(
            "Names of the stage's metric checks scored as pilot KPIs against their thresholds "
            "(e.g. SLA compliance, latency p50/p95, task backlog); default: every pre-promotion check."
        ),
    )
    rollback_lookback: int = Field(
        default=5,
        ge=0,
        le=100,
        description="How many earlier releases of the service are searched for rollbacks.",
    )

    @field_validator("blocking")
    @classmethod
    def _unique(cls, value: list[BlockingCondition]) -> list[BlockingCondition]:
        if len(set(value)) != len(value):
            raise ValueError("a blocking condition is listed twice")
        return value


class PilotHealthSpec(StrictModel):
    """The pilot health report, sent by a Temporal Schedule while the release is in a pilot stage."""

    interval: Duration = Field(
        default=timedelta(days=1), description="How often the report is built and sent."
    )
    channel_checks: list[str] = Field(
        default_factory=list,
        description="Checks that measure IM channel connectivity; default: those from the im-channel-down template.",
    )

    @field_validator("interval")
    @classmethod
    def _at_least_a_minute(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("the pilot health interval must be at least 1m")
        return value


class ReportsSpec(StrictModel):
    go_no_go: GoNoGoSpec = Field(default_factory=GoNoGoSpec, description="The go/no-go report.")
    pilot_health: PilotHealthSpec = Field(
        default_factory=PilotHealthSpec, description="The pilot health report."
    )


# -- what a workflow keeps about a report ----------------------------------------------------------


class ReportSummary(Record):
    """A stored report, as a release's status shows it (the full report is in the files)."""

    kind: ReportKind
    generated_at: datetime
    path: str = Field(default="", description="The Markdown file, where the worker stored it.")
    url: str = Field(default="", description="The API path that serves it.")
    score: int | None = None
    recommendation: Literal["go", "no-go"] | None = None
    headline: str = ""


# -- pieces shared by the reports -----------------------------------------------------------------


class Point(Record):
    at: datetime
    value: float | None = None
    breached: bool = False


class CheckSeries(Record):
    """One metric check's measurements over a period, with its normal range."""

    stage: str
    check: str
    phase: str = "guard"
    min: float | None = None
    max: float | None = None
    points: list[Point] = Field(default_factory=list)

    @property
    def breaches(self) -> int:
        return sum(1 for p in self.points if p.breached)

    def normal(self) -> str:
        """The normal range as a person reads it: `<= 0.05`, `>= 1`, `0.1..0.9`."""
        if self.min is not None and self.max is not None:
            return f"{self.min:g}..{self.max:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        if self.min is not None:
            return f">= {self.min:g}"
        return "-"


class AuditRef(Record):
    """An audit event a report cites as evidence."""

    at: datetime
    action: str
    result: str
    user: str
    entity: str = ""
    message: str = ""


# -- go/no-go ------------------------------------------------------------------------------------


class Deduction(Record):
    rule: str = Field(description="The rubric rule (docs/reports.md).")
    points: int
    reason: str
    evidence: list[str] = Field(default_factory=list)


class BlockingItem(Record):
    condition: str
    reason: str
    evidence: list[str] = Field(default_factory=list)


class Kpi(Record):
    check: str
    target: str
    value: float | None = None
    status: Literal["met", "missed", "no-data"]
    measured_at: datetime | None = None


class Issue(Record):
    severity: Literal["critical", "warning", "info"]
    title: str
    evidence: str = ""
    at: datetime | None = None


class RollbackEntry(Record):
    release_id: str
    at: datetime
    reason: str = ""
    restored: list[str] = Field(default_factory=list)


class ChecklistLine(Record):
    stage: str
    item: str
    status: str
    evidence: str = ""


class GoNoGoReport(Record):
    kind: Literal["go-no-go"] = "go-no-go"
    release_id: str
    service: str
    version: str
    stage: str
    generated_at: datetime
    score: int = Field(ge=0, le=100)
    threshold: int
    recommendation: Literal["go", "no-go"]
    reasons: list[str] = Field(default_factory=list, description="Why it recommends what it does.")
    deductions: list[Deduction] = Field(default_factory=list)
    blocking: list[BlockingItem] = Field(default_factory=list)
    kpis: list[Kpi] = Field(default_factory=list)
    checklist: list[ChecklistLine] = Field(default_factory=list)
    issues: list[Issue] = Field(default_factory=list)
    rollbacks: list[RollbackEntry] = Field(default_factory=list)
    guards: list[CheckSeries] = Field(
        default_factory=list, description="Guard measurements over the ramp, with thresholds."
    )
    signoff: str = ""


# -- pilot health ------------------------------------------------------------------------------


class ChannelHealth(Record):
    check: str
    measurements: int
    up: int
    availability: float | None = Field(default=None, description="Share of measurements up.")
    last_value: float | None = None


class DailyValue(Record):
    day: str
    check: str
    samples: int
    mean: float | None = None
    max: float | None = None
    breaches: int = 0


class PilotHealthReport(Record):
    kind: Literal["pilot-health"] = "pilot-health"
    release_id: str
    stage: str
    generated_at: datetime
    period_start: datetime
    period_end: datetime
    state: str = ""
    channels: list[ChannelHealth] = Field(default_factory=list)
    error_trend: list[DailyValue] = Field(default_factory=list)
    series: list[CheckSeries] = Field(default_factory=list)
    alerts_raised: int = 0
    refusals: int = 0
    escalations: int = 0
    guard_trips: int = 0
    governance_events: list[AuditRef] = Field(default_factory=list)


# -- release notes ------------------------------------------------------------------------------


class FlagLine(Record):
    flag: str
    environment: str
    before: int | None = Field(default=None, description="Percent before the release (snapshot).")
    now: int | None = Field(default=None, description="Percent now; None when off or unread.")
    now_known: bool = True


class ContactLine(Record):
    name: str
    role: str = ""
    email: str | None = None
    phone: str | None = None
    im: str | None = None


class GateLine(Record):
    stage: str
    gate: str
    result: str


class ReleaseNotes(Record):
    kind: Literal["release-notes"] = "release-notes"
    release_id: str
    service: str
    version: str
    owner: str
    generated_at: datetime
    state: str
    description: str = ""
    flags: list[FlagLine] = Field(default_factory=list)
    im_channels: list[str] = Field(default_factory=list)
    contacts: list[ContactLine] = Field(default_factory=list)
    emergency_contacts: list[ContactLine] = Field(default_factory=list)
    gates: list[GateLine] = Field(default_factory=list)


# -- retrospective -----------------------------------------------------------------------------


class Retrospective(Record):
    kind: Literal["retrospective"] = "retrospective"
    release_id: str
    run_id: str
    service: str
    version: str
    generated_at: datetime
    outcome: str
    reason: str = ""
    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float = 0.0
    changes: list[str] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)
    follow_ups: list[str] = Field(default_factory=list)


# -- governance review ---------------------------------------------------------------------------


class Count(Record):
    key: str
    count: int


class Gap(Record):
    start: datetime
    end: datetime
    minutes: float


class PermissionChange(Record):
    at: datetime
    change_id: str
    status: str = Field(description="requested, applied, rejected or expired.")
    actor: str
    change: str = ""
    message: str = ""


class GuardRate(Record):
    check: str
    releases: int
    samples: int
    breaches: int
    mean: float | None = None
    max: float | None = None


class DailyCount(Record):
    day: str
    count: int


class GovernanceReview(Record):
    kind: Literal["governance-review"] = "governance-review"
    month: str
    generated_at: datetime
    period_start: datetime
    period_end: datetime
    events: int
    by_action: list[Count] = Field(default_factory=list)
    by_result: list[Count] = Field(default_factory=list)
    by_user: list[Count] = Field(default_factory=list)
    gap_minutes: int = 5
    gaps: list[Gap] = Field(default_factory=list)
    permission_changes: list[PermissionChange] = Field(default_factory=list)
    contract_runs: int = 0
    contract_passed: int = 0
    contract_pass_rate: float | None = None
    guard_rates: list[GuardRate] = Field(default_factory=list)
    errors_per_day: list[DailyCount] = Field(
        default_factory=list, description="Failed, refused and denied events per day."
    )
    governance_version: str | None = None
    governance_signed_off: bool = False
    governance_signed_by: list[str] = Field(default_factory=list)


AnyReport = GoNoGoReport | PilotHealthReport | ReleaseNotes | Retrospective | GovernanceReview

REPORT_MODELS: dict[ReportKind, type[Record]] = {
    ReportKind.GO_NO_GO: GoNoGoReport,
    ReportKind.PILOT_HEALTH: PilotHealthReport,
    ReportKind.RELEASE_NOTES: ReleaseNotes,
    ReportKind.RETROSPECTIVE: Retrospective,
    ReportKind.GOVERNANCE_REVIEW: GovernanceReview,
}


def report_json_schema(kind: ReportKind) -> dict[str, Any]:
    """The JSON Schema of a report's JSON form, exported like the plan's."""
    schema = REPORT_MODELS[kind].model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"Release Warden {kind.value} report"
    return schema


# -- what activities take ------------------------------------------------------------------------


class ReportRequest(Record):
    """Build one report of a release (by the workflow, a schedule or a person)."""

    release_id: str
    kind: ReportKind
    stage: str | None = None
    run_id: str = ""
    period_end: datetime | None = None
    period: timedelta | None = None


class PilotHealthInput(Record):
    """Input of PilotHealthWorkflow, fixed when its schedule is created."""

    release_id: str
    stage: str
    interval_s: float = 86400.0
    trace_id: str = ""


class PilotScheduleRequest(Record):
    release_id: str
    stage: str
    interval_s: float
    task_queue: str = ""
    trace_id: str = ""


class ScheduleResult(Record):
    schedule_id: str
    done: bool
    message: str = ""


class GovernanceReviewInput(Record):
    """Input of GovernanceReviewWorkflow: a month (YYYY-MM), or the month before it runs."""

    month: str | None = None


MONTH_PATTERN = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$"

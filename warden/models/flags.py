"""Feature flags: how a stage ramps them, and what a backend reports about them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from warden.models.common import Duration, Record, StrictModel

FLAG_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-*]{0,199}$"
#: Stages whose name suggests a canary ramp by default; others go straight to 100%.
RAMPED_STAGE_NAMES = frozenset({"pilot", "canary", "production", "prod"})
DEFAULT_RAMP = (5, 25, 50, 100)


class FlagRamp(StrictModel):
    """How one flag opens in a stage: percentages in order, with a guarded bake after each.
    A release never lowers a flag that is already live: a step at or below what the flag serves
    when the step comes is skipped, recorded as `flag.step.skipped` with its reason, and
    `warden release start` names those steps before anything changes. A ramp whose every step
    is skipped still bakes once under its guards. The rollback restores the value from before
    the release either way."""

    flag: str = Field(pattern=FLAG_KEY_PATTERN)
    steps: list[int] | None = Field(
        default=None,
        description="Percentages, e.g. [5, 25, 50, 100]. Default: [100] for dev/staging, [5, 25, 50, 100] for pilot/production.",
    )
    bake: Duration = Field(default=timedelta(0), description="Guarded wait after each step.")
    start_over: bool = Field(
        default=False,
        description=(
            "Apply every step even at or below what the flag already serves, lowering a live "
            "flag first. Default false: such steps are skipped, so a release never lowers a "
            "live flag."
        ),
    )

    @field_validator("steps")
    @classmethod
    def _valid_steps(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("steps must list at least one percentage")
        for percent in value:
            if not 0 <= percent <= 100:
                raise ValueError(f"{percent} is not a percentage (0-100)")
        if any(b < a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError("steps must not decrease (a ramp only opens; rollback closes)")
        return value

    def steps_for(self, stage_name: str) -> list[int]:
        if self.steps is not None:
            return list(self.steps)
        return list(DEFAULT_RAMP) if stage_name.lower() in RAMPED_STAGE_NAMES else [100]

    def skips(self, stage_name: str, served: int | None) -> list[int]:
        """The steps a release skips because the flag already serves them (or more)."""
        if self.start_over or served is None:
            return []
        return [percent for percent in self.steps_for(stage_name) if percent <= served]


def skipped_step_reason(flag: str, environment: str, served: int, percent: int) -> str:
    return (
        f"{flag} already serves {served}% in {environment}: step {percent}% skipped "
        "(a release never lowers a live flag; `start_over: true` on the ramp applies it)"
    )


def live_flag_warning(flag: str, environment: str, served: int, skipped: list[int]) -> str:
    """One line for `warden release start`: the steps of one flag's ramp that will be skipped."""
    steps = ", ".join(f"{p}%" for p in skipped)
    return (
        f"{flag} already serves {served}% in {environment}: ramp step(s) {steps} will be skipped, "
        "the flag is not lowered (set `start_over: true` on the ramp to start it lower)"
    )


class FlagState(Record):
    """A flag as the backend holds it. `definition` is the backend's own JSON, restored verbatim."""

    flag: str
    environment: str
    exists: bool = True
    enabled: bool = False
    percent: int | None = None
    definition: dict[str, Any] | None = None


class FlagSnapshot(Record):
    """Every flag a release will touch, in one environment, before it touched them."""

    backend: str
    environment: str
    taken_at: datetime
    flags: list[FlagState] = Field(default_factory=list)
    digest: str = ""

    def state(self, flag: str) -> FlagState | None:
        return next((f for f in self.flags if f.flag == flag), None)


class FlagChange(StrictModel):
    """Set a flag to a percentage in one environment (0 = off, 100 = fully on)."""

    flag: str = Field(pattern=FLAG_KEY_PATTERN)
    environment: str = Field(min_length=1, max_length=100)
    percent: int = Field(ge=0, le=100)


class FlagChangeResult(Record):
    flag: str
    environment: str
    percent: int
    changed: bool
    before: FlagState | None = None
    after: FlagState | None = None


class FlagPresence(Record):
    environment: str
    present: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


class RestoreReport(Record):
    """What a rollback put back. `verified` is true only after reading every flag back."""

    verified: bool
    restored: list[FlagState] = Field(default_factory=list)
    mismatches: list[str] = Field(default_factory=list)
    attempts: int = 1
    reason: str = ""


class FlagStepRecord(Record):
    flag: str
    environment: str
    percent: int
    at: datetime
    state: Literal["applied", "baking", "done", "tripped", "skipped"] = "applied"
    guard: str = ""
    #: Why a step was skipped (the flag already served as much or more).
    reason: str = ""


class FlagsInput(Record):
    release_id: str
    environments: list[str]
    flags: list[str]
    trace_id: str


class FlagChangeInput(Record):
    release_id: str
    change: FlagChange
    trace_id: str
    user: str = "warden"


class RestoreInput(Record):
    release_id: str
    snapshots: list[FlagSnapshot]
    flags: list[str]
    environments: list[str]
    reason: str
    trace_id: str


class FlagOperation(StrictModel):
    """Input of FlagChangeWorkflow: the operator's kill switch (`warden flags disable|enable|set`)."""

    flag: str = Field(pattern=FLAG_KEY_PATTERN)
    environment: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9\-]{0,62}$")
    percent: int = Field(ge=0, le=100)
    user: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    trace_id: str = ""
    dev_identity: bool = False


class FlagOperationResult(Record):
    flag: str
    environment: str
    percent: int
    changed: bool
    before: FlagState | None = None
    after: FlagState | None = None


class FlagReadRequest(StrictModel):
    environments: list[str] = Field(
        default_factory=list, description="None: every environment the backend holds."
    )
    flags: list[str] = Field(default_factory=list)


class KillSwitchOutcome(Record):
    """The kill switch's result, and the running releases that may change the flag again."""

    result: FlagOperationResult
    releases_touching: list[str] = Field(default_factory=list)

"""Metric checks: where a number comes from, what is normal, and what to do when it is not.

Semantics follow Argo Rollouts' analysis (interval, count, initial_delay, failure_limit,
inconclusive_limit, consecutive_error_limit, dry_run) and add a Prometheus-alert style
`for:` hold time and an action per check.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from warden.models.common import Duration, Record, StrictModel

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER_PREFIXES = ("=~", "!=", "!~", "~")


class PrometheusQuery(StrictModel):
    """A PromQL instant query over Prometheus' HTTP API (`/api/v1/query`)."""

    provider: Literal["prometheus"] = "prometheus"
    query: str = Field(min_length=1, max_length=10_000)
    address: str | None = Field(
        default=None,
        description="Prometheus base URL; defaults to the worker's WARDEN_PROMETHEUS_URL.",
    )


class ScrapeQuery(StrictModel):
    """Reads a Prometheus exposition endpoint directly; not a PromQL engine.

    kind:
      gauge     current value of a gauge (summed over matching series, or `aggregate`)
      counter   current value of a counter
      rate      per-second increase of a counter between two scrapes
      ratio     increase(metric) / increase(denominator) between two scrapes
      quantile  histogram quantile over the bucket increases between two scrapes
      age       seconds since the unix timestamp held by a gauge (e.g. last event time)

    `labels` match exactly (`channel: wecom`); regular expressions, negative matchers and
    functions need the `prometheus` provider.
    """

    provider: Literal["scrape"] = "scrape"
    url: str = Field(
        default="/metrics", description="Relative to the stage's base_url, or absolute."
    )
    kind: Literal["gauge", "counter", "rate", "ratio", "quantile", "age"]
    metric: str = Field(
        min_length=1, description="A metric name as exposed, e.g. sla_overdue_total."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Exact label matches.")
    denominator: str | None = Field(default=None, description="Counter divided by (kind 'ratio').")
    denominator_labels: dict[str, str] = Field(default_factory=dict)
    quantile: float | None = Field(default=None, gt=0, lt=1)
    aggregate: Literal["sum", "max", "min", "avg"] = Field(
        default="sum", description="How matching series combine for gauge, counter and age."
    )
    sample_window: Duration = Field(
        default=timedelta(seconds=10),
        description=(
            "rate/ratio/quantile need two scrapes: with no earlier scrape, take one, wait "
            "min(sample_window, interval), then measure."
        ),
    )

    @field_validator("metric", "denominator", mode="before")
    @classmethod
    def _plain_name(cls, value: object) -> object:
        if isinstance(value, str) and not _METRIC_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a metric name; the scrape provider reads one metric by name "
                "and is not a PromQL engine (use provider: prometheus for expressions)"
            )
        return value

    @field_validator("labels", "denominator_labels", mode="before")
    @classmethod
    def _exact_labels(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        for key, val in value.items():
            text = str(val)
            if (
                not isinstance(key, str)
                or not _LABEL_NAME.match(key)
                or text.startswith(_MATCHER_PREFIXES)
            ):
                raise ValueError(
                    f"label matcher {key}: {val!r} is not supported: the scrape provider matches labels "
                    "exactly (name: value); use provider: prometheus for =~, != and !~"
                )
        return value

    @model_validator(mode="after")
    def _kind_needs(self) -> ScrapeQuery:
        if self.kind == "ratio" and not self.denominator:
            raise ValueError("kind 'ratio' needs 'denominator'")
        if self.kind != "ratio" and (self.denominator or self.denominator_labels):
            raise ValueError(f"'denominator' only applies to kind 'ratio', not {self.kind!r}")
        if self.kind == "quantile" and self.quantile is None:
            raise ValueError("kind 'quantile' needs 'quantile' (e.g. 0.95)")
        if self.kind != "quantile" and self.quantile is not None:
            raise ValueError(f"'quantile' only applies to kind 'quantile', not {self.kind!r}")
        if self.sample_window < timedelta(milliseconds=100):
            raise ValueError("sample_window must be at least 100ms")
        return self

    @property
    def needs_baseline(self) -> bool:
        """Kinds computed from the difference between two scrapes."""
        return self.kind in ("rate", "ratio", "quantile")


class HttpJsonQuery(StrictModel):
    """GET a JSON document and take the number at `json_path` (like Argo Rollouts' web provider)."""

    provider: Literal["http-json"] = "http-json"
    url: str = Field(min_length=1, description="Relative to the stage's base_url, or absolute.")
    json_path: str = Field(
        min_length=1, description="Dotted path, e.g. 'data.error_rate' or 'items.0.value'."
    )
    headers: dict[str, str] = Field(default_factory=dict)


MetricQuery = Annotated[
    PrometheusQuery | ScrapeQuery | HttpJsonQuery, Field(discriminator="provider")
]


class CheckAction(StrEnum):
    ROLLBACK = "rollback"
    PAUSE = "pause"
    NOTIFY = "notify"


#: When several checks trip at once, the strongest action wins.
ACTION_PRIORITY = {CheckAction.ROLLBACK: 0, CheckAction.PAUSE: 1, CheckAction.NOTIFY: 2}


def _both_phases() -> list[Literal["pre", "guard"]]:
    return ["pre", "guard"]


class MetricCheck(StrictModel):
    """One metric check. Either `template` (a built-in, see `warden plan templates`) or `query`."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
    template: str | None = None
    params: dict[str, float | str] = Field(default_factory=dict)
    query: MetricQuery | None = None
    max: float | None = Field(default=None, description="Normal while value <= max.")
    min: float | None = Field(default=None, description="Normal while value >= min.")
    hold: Duration = Field(
        default=timedelta(0),
        alias="for",
        description="The condition must be breached this long before a measurement counts as failed.",
    )
    interval: Duration = Field(
        default=timedelta(seconds=10), description="Time between measurements."
    )
    count: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Measurements in a pre-promotion check (default 1); a guard measures every interval until its window ends.",
    )
    initial_delay: Duration = Field(
        default=timedelta(0), description="Wait before the first measurement."
    )
    failure_limit: int = Field(
        default=0, ge=0, description="The check fails when failed measurements exceed this."
    )
    inconclusive_limit: int = Field(
        default=0,
        ge=0,
        description="The check is inconclusive when measurements without a usable value exceed this.",
    )
    consecutive_error_limit: int = Field(
        default=4,
        ge=0,
        description="The check is inconclusive when consecutive provider errors exceed this.",
    )
    dry_run: bool = Field(default=False, description="Measured and reported, never decides.")
    action: CheckAction = CheckAction.ROLLBACK
    notify: list[str] = Field(
        default_factory=list,
        description="Audiences of the notice when the check trips: operations, committee, owner.",
    )
    phases: list[Literal["pre", "guard"]] = Field(
        default_factory=_both_phases,
        min_length=1,
        description="Where the check runs: before promotion ('pre'), during flag steps and bakes ('guard').",
    )
    keep: int = Field(default=10, ge=1, le=1000, description="Measurements kept as evidence.")

    @model_validator(mode="before")
    @classmethod
    def _apply_template(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("template") is not None:
            from warden.models.templates import expand_template

            return expand_template(data)
        return data

    @model_validator(mode="after")
    def _complete(self) -> MetricCheck:
        if self.query is None:
            raise ValueError("a check needs 'query' or 'template'")
        if self.max is None and self.min is None:
            raise ValueError("a check needs a threshold: 'max' and/or 'min'")
        for bound in (self.max, self.min):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("thresholds must be finite numbers")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError("'min' is greater than 'max'")
        if self.interval < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s")
        return self

    def breached(self, value: float) -> bool:
        return (self.max is not None and value > self.max) or (
            self.min is not None and value < self.min
        )

    def condition(self) -> str:
        """The normal range as a person reads it: `<= 0.05`, `>= 1`, `0.1..0.9`."""
        if self.max is not None and self.min is not None:
            return f"{self.min:g}..{self.max:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        return f">= {self.min:g}"

    @property
    def measurements_due(self) -> int:
        """Measurements a pre-promotion check takes (Argo's `count`, default 1)."""
        return self.count or 1


def pre_checks_window(checks: list[MetricCheck]) -> timedelta:
    """How long a clean pre-promotion run of `checks` takes, including `for:` holds and baselines.

    Provider errors add up to `consecutive_error_limit` intervals on top; callers add slack.
    """
    longest = timedelta(0)
    for check in checks:
        span = check.initial_delay + check.interval * (check.measurements_due - 1) + check.hold
        if isinstance(check.query, ScrapeQuery) and check.query.needs_baseline:
            span += min(check.query.sample_window, check.interval)
        longest = max(longest, span)
    return longest


class MeasurementPhase(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    PENDING = "pending"  # breached, but not yet for as long as `for:`; counts neither way
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


class Measurement(Record):
    at: datetime
    phase: MeasurementPhase
    value: float | None = None
    message: str = ""


class CheckPhase(StrEnum):
    RUNNING = "running"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


class CheckState(Record):
    """Counters of one check; heartbeated so a restarted worker resumes them."""

    name: str
    phase: CheckPhase = CheckPhase.RUNNING
    action: CheckAction = CheckAction.ROLLBACK
    dry_run: bool = False
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    breach_since: datetime | None = None
    alerting: bool = False
    measurements: list[Measurement] = Field(default_factory=list)
    message: str = ""
    next_at: datetime | None = Field(default=None, description="When the next measurement is due.")
    provider_state: dict[str, Any] | None = Field(
        default=None,
        repr=False,
        description="What a provider keeps between measurements, e.g. the previous scrape for a rate.",
    )

    @property
    def last_value(self) -> float | None:
        return self.measurements[-1].value if self.measurements else None

    @property
    def measured(self) -> int:
        """Measurements that count toward `count` (Argo counts all but errors; pending ones wait)."""
        return self.successful + self.failed + self.inconclusive

    @property
    def deciding(self) -> bool:
        return not self.dry_run

    def resumed(self) -> CheckState:
        """After a person resumes a paused release: keep the evidence, start the counts afresh."""
        return self.model_copy(
            update={
                "phase": CheckPhase.RUNNING,
                "successful": 0,
                "failed": 0,
                "inconclusive": 0,
                "errors": 0,
                "consecutive_errors": 0,
                "breach_since": None,
            }
        )


class ChecksOutcome(StrEnum):
    PASSED = "passed"  # every deciding check successful (or the window ended clean)
    FAILED = "failed"  # a deciding check failed; `tripped` says which and its action
    INCONCLUSIVE = "inconclusive"  # no failure, but evidence missing: never a pass
    ALERT_CHANGED = "alert_changed"  # guard only: a notify-check started or stopped alerting


class ChecksReport(Record):
    phase: Literal["pre", "guard"]
    outcome: ChecksOutcome
    checks: list[CheckState] = Field(default_factory=list)
    tripped: str | None = None
    action: CheckAction | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    window_left_s: float = 0.0

    def summary(self) -> str:
        if not self.checks:
            return "no checks"
        parts = []
        for check in self.checks:
            value = check.last_value
            shown = "n/a" if value is None else f"{value:.4g}"
            tags = [t for t, on in (("dry-run", check.dry_run), ("alerting", check.alerting)) if on]
            tag = f" ({', '.join(tags)})" if tags else ""
            phase = check.phase.value
            if check.phase == CheckPhase.RUNNING and self.outcome == ChecksOutcome.PASSED:
                phase = "not measured"  # the window ended before a measurement was due
            parts.append(f"{check.name}={shown} {phase}{tag}")
        return f"{self.outcome.value}: " + ", ".join(parts)

    def check(self, name: str) -> CheckState | None:
        return next((c for c in self.checks if c.name == name), None)


class ChecksInput(Record):
    """Run checks once before promotion (`pre`) or watch them for a window (`guard`).

    `state` carries counters from an earlier guard run of the same window, so a guard
    restarted after an alert change (or on a new worker) resumes instead of starting over.
    """

    release_id: str
    stage: str
    base_url: str
    phase: Literal["pre", "guard"]
    checks: list[MetricCheck]
    trace_id: str
    window_s: float = 0.0
    state: list[CheckState] = Field(default_factory=list)

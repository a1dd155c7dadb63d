"""The dashboard's health cards, its alert ticker and its error events, from the same metric
providers and check templates the guards use.

Three cards per environment (docs/dashboard.md):
- channel link status: each IM channel up or down (`im-channel-down`, per channel) with its
  latency (`latency-p95`, per channel);
- the SLA board: the overdue count now and the compliance against the 95% target
  (`sla-overdue-rate`, plus the overdue counter);
- error events: audit rows and alerts (refusals, failed gates, rollbacks, kill switches, the
  `external-api-error-rate` check), each with a level, an impact and an actor.

What feeds them is a YAML file (`WARDEN_DASHBOARD_FILE`): the service, its environments with
their base URLs and channels, and each card's check (a template with params, or a full check
as a plan writes it, `provider: prometheus` included). Without a file the cards watch the
sample stack (`python -m examples.support_desk stack`) on 127.0.0.1:8081-8084.

Cards are measured when someone looks, at most once per `refresh`, and every viewer shares the
result; one GET of an environment's metrics endpoint answers all of its scrape queries.
A channel that stays down (or unreadable) for the `im-channel-down` check's `for:` raises an
alert in the ticker, beside the active guard alerts of running releases.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import Field, ValidationError, field_validator

from activities.metrics.providers import MeasureContext, MetricError, MetricProvider
from activities.metrics.providers import build_providers as build_metric_providers
from warden.errors import WardenError
from warden.models.audit import AuditEvent, AuditQuery
from warden.models.common import Duration, StrictModel
from warden.models.metrics import MetricCheck
from warden.models.plan import format_validation_error
from warden.services.audit import AuditService
from warden.services.releases import ReleaseService
from warden.settings import Settings

log = logging.getLogger("warden.health")

#: The sample service's channels (examples/support_desk/metrics.py).
DEFAULT_CHANNELS = ["feishu", "enterprise-qq", "wecom", "dingtalk", "web-chat", "email"]
DEFAULT_ENVIRONMENTS = {
    "dev": "http://127.0.0.1:8081",
    "staging": "http://127.0.0.1:8082",
    "pilot": "http://127.0.0.1:8083",
    "production": "http://127.0.0.1:8084",
}


class CardCheck(StrictModel):
    """A card's check: as a plan writes one (`template` + `params`, or a `query`), without a name."""

    template: str | None = None
    params: dict[str, float | str] = Field(default_factory=dict)
    query: dict[str, Any] | None = None
    max: float | None = None
    min: float | None = None
    hold: Duration | None = Field(default=None, alias="for")
    interval: Duration | None = None

    def check(self, name: str, **params: str) -> MetricCheck:
        data: dict[str, Any] = {
            "name": name,
            **self.model_dump(exclude_none=True, by_alias=True, exclude={"params"}),
        }
        merged: dict[str, Any] = {**self.params}
        for key, value in params.items():
            merged[key] = (
                f"{merged['selector']},{value}" if key == "selector" and merged.get(key) else value
            )
        if merged:
            data["params"] = merged
        return MetricCheck.model_validate(data)


def _template(name: str, **params: float | str) -> CardCheck:
    return CardCheck(template=name, params=dict(params))


class Cards(StrictModel):
    channel_down: CardCheck = Field(default_factory=lambda: _template("im-channel-down"))
    channel_latency: CardCheck = Field(default_factory=lambda: _template("latency-p95"))
    sla_overdue_rate: CardCheck = Field(default_factory=lambda: _template("sla-overdue-rate"))
    sla_overdue_count: CardCheck = Field(
        default_factory=lambda: CardCheck(
            query={"provider": "scrape", "kind": "counter", "metric": "sla_overdue_total"},
            min=0,
        )
    )
    external_api_error_rate: CardCheck = Field(
        default_factory=lambda: _template("external-api-error-rate")
    )
    sla_target: float = Field(
        default=0.95, gt=0, le=1, description="Share of conversations within SLA."
    )


class HealthEnvironment(StrictModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    base_url: str = Field(min_length=1, max_length=2000)
    channels: list[str] = Field(default_factory=lambda: list(DEFAULT_CHANNELS), max_length=50)

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")


class DashboardConfig(StrictModel):
    """`WARDEN_DASHBOARD_FILE`: what the health cards watch."""

    service: str = "support-desk"
    refresh: Duration = Field(default=timedelta(seconds=1))
    environments: list[HealthEnvironment] = Field(
        default_factory=lambda: [
            HealthEnvironment(name=name, base_url=url) for name, url in DEFAULT_ENVIRONMENTS.items()
        ],
        min_length=1,
        max_length=20,
    )
    cards: Cards = Field(default_factory=Cards)


def load_config(path: Path | None) -> DashboardConfig:
    if path is None:
        return DashboardConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WardenError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    try:
        config = DashboardConfig.model_validate(data)
        # every card's check must build, as the guards would build it
        for env in config.environments[:1]:
            _checks_for(config, env)
    except ValidationError as exc:
        raise WardenError(f"{path}: " + "; ".join(format_validation_error(exc))) from None
    return config


# -- what a card shows ----------------------------------------------------------------------------


@dataclass
class Value:
    """One measured number, or why there is none."""

    value: float | None
    breached: bool
    message: str = ""
    error: bool = False

    @property
    def known(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


@dataclass
class ChannelLink:
    channel: str
    up: bool | None  # None: cannot tell (metrics unreadable or missing)
    latency_p95_s: float | None
    latency_breached: bool
    message: str
    down_since: datetime | None = None


@dataclass
class EnvironmentHealth:
    environment: str
    base_url: str
    channels: list[ChannelLink]
    sla_overdue_count: float | None
    sla_overdue_rate: float | None
    sla_compliance: float | None
    sla_target: float
    sla_breached: bool
    sla_message: str
    external_error_rate: Value | None

    @property
    def channels_down(self) -> int:
        return sum(1 for c in self.channels if c.up is not True)


@dataclass
class TickerAlert:
    source: str  # "health" or the release id
    check: str
    environment: str
    since: datetime
    message: str
    release_id: str | None = None


@dataclass
class ErrorEvent:
    at: datetime
    level: str  # error | warning
    impact: str
    actor: str
    what: str
    release_id: str | None = None


@dataclass
class HealthSnapshot:
    service: str
    measured_at: datetime
    environments: list[EnvironmentHealth]
    alerts: list[TickerAlert] = field(default_factory=list)

    def version(self) -> str:
        """Changes when what a person sees changes (not on every re-measurement)."""
        parts: list[str] = [a.check + a.environment + a.source for a in self.alerts]
        for env in self.environments:
            parts += [
                f"{c.channel}:{c.up}:{_round(c.latency_p95_s)}:{c.latency_breached}"
                for c in env.channels
            ]
            parts += [
                str(env.sla_overdue_count),
                _round(env.sla_overdue_rate),
                str(env.sla_breached),
                _round(env.external_error_rate.value if env.external_error_rate else None),
            ]
        return str(abs(hash("|".join(parts))))


def _round(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _checks_for(config: DashboardConfig, env: HealthEnvironment) -> dict[str, MetricCheck]:
    cards = config.cards
    checks: dict[str, MetricCheck] = {}
    for channel in env.channels:
        selector = f'channel="{channel}"'
        checks[f"down:{channel}"] = cards.channel_down.check(
            f"im-channel-down.{_safe(channel)}", selector=selector
        )
        checks[f"latency:{channel}"] = cards.channel_latency.check(
            f"latency-p95.{_safe(channel)}", selector=selector
        )
    checks["sla-rate"] = cards.sla_overdue_rate.check("sla-overdue-rate")
    checks["sla-count"] = cards.sla_overdue_count.check("sla-overdue-count")
    checks["external"] = cards.external_api_error_rate.check("external-api-error-rate")
    return checks


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in text) or "x"


class _SharedScrapes(httpx.AsyncBaseTransport):
    """One GET of a URL answers every query of one measurement round (they all read /metrics)."""

    def __init__(self, ttl_s: float) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, int, list[tuple[bytes, bytes]], bytes]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return await self._inner.handle_async_request(request)
        key = str(request.url)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cache.get(key)
            if hit is None or time.monotonic() - hit[0] > self._ttl:
                response = await self._inner.handle_async_request(request)
                body = await response.aread()
                await response.aclose()
                hit = (time.monotonic(), response.status_code, response.headers.raw, body)
                self._cache[key] = hit
        headers = [(k, v) for k, v in hit[2] if k.lower() not in (b"content-encoding",)]
        return httpx.Response(hit[1], headers=headers, content=hit[3], request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class HealthService:
    """Long-lived (one per API): it keeps each check's provider state (a ratio's previous scrape)
    and how long each channel has been down."""

    def __init__(
        self,
        settings: Settings,
        *,
        providers: dict[str, MetricProvider] | None = None,
        config: DashboardConfig | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or load_config(settings.dashboard_file)
        refresh = max(0.2, self.config.refresh.total_seconds())
        self._refresh_s = refresh
        self._http: httpx.AsyncClient | None = None
        if providers is None:
            self._http = httpx.AsyncClient(
                timeout=min(settings.http_timeout_s, 5.0),
                follow_redirects=False,
                trust_env=False,
                transport=_SharedScrapes(refresh / 2),
            )
            providers = build_metric_providers(settings, self._http)
        self.providers = providers
        self._checks = {env.name: _checks_for(self.config, env) for env in self.config.environments}
        #: each check's recent provider states (a scrape each), oldest first: a rate covers
        #: about one `interval` of the check, however often the cards are looked at
        self._state: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._last: dict[tuple[str, str], Value] = {}
        self._down_since: dict[tuple[str, str], datetime] = {}
        self._lock = asyncio.Lock()
        self._snapshot: tuple[float, HealthSnapshot] | None = None
        self._release_alerts: tuple[float, list[TickerAlert]] | None = None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    # -- the cards --------------------------------------------------------------------------------

    async def snapshot(self, releases: ReleaseService | None = None) -> HealthSnapshot:
        """The cards and the ticker, measured at most once per `refresh` for every viewer."""
        async with self._lock:
            if self._snapshot and time.monotonic() - self._snapshot[0] < self._refresh_s:
                return self._snapshot[1]
            now = datetime.now(UTC)
            envs = await asyncio.gather(
                *(self._environment(env, now) for env in self.config.environments)
            )
            alerts = self._health_alerts(envs, now)
            if releases is not None:
                alerts += await self._guard_alerts(releases)
            snapshot = HealthSnapshot(self.config.service, now, list(envs), alerts)
            self._snapshot = (time.monotonic(), snapshot)
            return snapshot

    async def _measure(self, env: HealthEnvironment, key: str, now: datetime) -> Value:
        check = self._checks[env.name][key]
        query = check.query
        provider = self.providers.get(getattr(query, "provider", ""))
        if provider is None:
            return Value(None, False, f"no provider {getattr(query, 'provider', '?')}", True)
        ctx = MeasureContext(
            base_url=env.base_url,
            trace_id=f"dashboard-{env.name}",
            release_id=f"dashboard:{self.config.service}",
            stage=env.name,
            check=check.name,
            interval_s=max(check.interval.total_seconds(), self._refresh_s),
            now=now,
        )
        slot = (env.name, key)
        baselines = self._state.setdefault(slot, [])
        try:
            reading = await asyncio.wait_for(
                provider.measure(query, ctx, _baseline(baselines, check, now)), timeout=5.0
            )
        except (MetricError, TimeoutError) as exc:
            return Value(None, False, str(exc) or "timed out", True)
        if reading.state is not None and reading.state not in baselines:
            baselines.append(reading.state)
            del baselines[:-MAX_BASELINES]
        if reading.retry_in_s is not None or reading.value is None:
            # a baseline was just taken, or nothing moved: keep showing the last number
            last = self._last.get(slot)
            if last is not None and last.known:
                return last
            return Value(None, False, reading.message)
        value = Value(reading.value, check.breached(reading.value), reading.message)
        self._last[slot] = value
        return value

    async def _environment(self, env: HealthEnvironment, now: datetime) -> EnvironmentHealth:
        keys = list(self._checks[env.name])
        values = dict(
            zip(
                keys, await asyncio.gather(*(self._measure(env, k, now) for k in keys)), strict=True
            )
        )
        channels = []
        for channel in env.channels:
            down, latency = values[f"down:{channel}"], values[f"latency:{channel}"]
            up: bool | None = None if not down.known else not down.breached
            slot = (env.name, channel)
            if up is True:
                self._down_since.pop(slot, None)
            else:
                self._down_since.setdefault(slot, now)
            message = (
                "up"
                if up
                else "down"
                if up is False
                else f"no reading: {down.message or 'no data'}"
            )
            channels.append(
                ChannelLink(
                    channel=channel,
                    up=up,
                    latency_p95_s=latency.value if latency.known else None,
                    latency_breached=latency.breached,
                    message=message,
                    down_since=self._down_since.get(slot),
                )
            )
        rate, count = values["sla-rate"], values["sla-count"]
        target = self.config.cards.sla_target
        compliance = 1.0 - rate.value if rate.known and rate.value is not None else None
        return EnvironmentHealth(
            environment=env.name,
            base_url=env.base_url,
            channels=channels,
            sla_overdue_count=count.value if count.known else None,
            sla_overdue_rate=rate.value if rate.known else None,
            sla_compliance=compliance,
            sla_target=target,
            sla_breached=rate.breached or (compliance is not None and compliance < target),
            sla_message=rate.message,
            external_error_rate=values["external"],
        )

    def _health_alerts(self, envs: list[EnvironmentHealth], now: datetime) -> list[TickerAlert]:
        alerts = []
        for env in envs:
            hold = self._checks[env.environment]
            for channel in env.channels:
                if channel.down_since is None:
                    continue
                check = hold[f"down:{channel.channel}"]
                if now - channel.down_since < check.hold:
                    continue
                what = "down" if channel.up is False else "unreadable"
                alerts.append(
                    TickerAlert(
                        source="health",
                        check="im-channel-down",
                        environment=env.environment,
                        since=channel.down_since,
                        message=(
                            f"{channel.channel} {what} in {env.environment} for "
                            f"{_ago(now - channel.down_since)} ({check.condition()} needed for "
                            f"{_ago(check.hold)})"
                        ),
                    )
                )
            external = env.external_error_rate
            slot = (env.environment, "external-api-error-rate")
            if external is None or not external.known or not external.breached:
                self._down_since.pop(slot, None)
            else:
                alerts.append(
                    TickerAlert(
                        source="health",
                        check="external-api-error-rate",
                        environment=env.environment,
                        since=self._down_since.setdefault(slot, now),
                        message=f"external API error rate {external.value:.1%} in {env.environment}",
                    )
                )
        return alerts

    async def _guard_alerts(self, releases: ReleaseService) -> list[TickerAlert]:
        """Active guard alerts of running releases (at most 20, newest first), cached like the cards."""
        cached = self._release_alerts
        if cached and time.monotonic() - cached[0] < max(self._refresh_s, 1.0):
            return cached[1]
        alerts: list[TickerAlert] = []
        try:
            # this deployment's releases (its task queue): another's worker would never answer
            queue = self.settings.task_queue.replace("'", "")
            running = await releases.list(
                limit=20, query=f"ExecutionStatus = 'Running' AND TaskQueue = '{queue}'"
            )
            statuses = await asyncio.gather(
                *(asyncio.wait_for(releases.status(r.release_id), timeout=1.0) for r in running),
                return_exceptions=True,
            )
        except Exception as exc:  # the ticker shows what it can; the cards stay up
            log.warning("guard alerts not read: %s", exc)
            statuses = []
        for status in statuses:
            if isinstance(status, BaseException):
                continue
            stage_env = {s.name: s.environment for s in status.stages}
            for alert in status.alerts:
                if alert.active:
                    alerts.append(
                        TickerAlert(
                            source=status.release_id,
                            check=alert.check,
                            environment=stage_env.get(alert.stage, alert.stage),
                            since=alert.since,
                            message=alert.message,
                            release_id=status.release_id,
                        )
                    )
        self._release_alerts = (time.monotonic(), alerts)
        return alerts


MAX_BASELINES = 200


def _baseline(
    states: list[dict[str, Any]], check: MetricCheck, now: datetime
) -> dict[str, Any] | None:
    """The newest earlier scrape at least one check interval old (else the oldest there is)."""
    if not states:
        return None
    cutoff = now.timestamp() - check.interval.total_seconds()
    old_enough = [s for s in states if float(s.get("at", 0)) <= cutoff]
    if old_enough:
        # drop the ones older than the chosen baseline: they are never needed again
        keep = states.index(old_enough[-1])
        del states[:keep]
        return old_enough[-1]
    return states[0]


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


# -- error events ---------------------------------------------------------------------------------

_REFUSED = {"refused", "unauthenticated", "forbidden", "denied", "not_allowed", "disabled"}


def classify(event: AuditEvent) -> ErrorEvent | None:
    """An audit row as an error event (level, impact, actor), or None when it is routine."""
    action, result = event.action, event.result
    what = str(event.details.get("reason") or event.details.get("error") or f"{action} {result}")
    level = impact = None
    if action.startswith("killswitch."):
        level, impact = (
            ("error", "flags switched off")
            if result != "failed"
            else ("error", "kill switch failed")
        )
    elif action.startswith("rollback."):
        level = "error" if action != "rollback.completed" else "warning"
        impact = "release rolled back" if action == "rollback.completed" else "rolling back"
        if action == "rollback.completed":
            verified = event.details.get("verified")
            what = f"flags restored ({'verified' if verified else 'not verified'})"
    elif action == "api.failure":
        level, impact = "warning", f"call failed ({event.result})"
        what = f"{event.details.get('method', '')} {event.details.get('path', '')}".strip()
    elif action == "auth.refused" or action.endswith(".denied"):
        level, impact = "warning", "request refused"
    elif action.endswith(".refused") or result in _REFUSED:
        level, impact = "warning", "request refused by the release"
    elif result == "failed":
        level, impact = "error", "gate failed" if action.startswith("stage.") else "step failed"
    if level is None or impact is None:
        return None
    return ErrorEvent(
        at=event.timestamp,
        level=level,
        impact=impact,
        actor=event.userId,
        what=what[:300],
        release_id=event.releaseId,
    )


def error_events(
    audit: AuditService, *, release_id: str | None = None, limit: int = 50, scan: int = 1000
) -> list[ErrorEvent]:
    """The newest error events among the last `scan` audit rows (blocking: run in a thread)."""
    rows = audit.query(AuditQuery(releaseId=release_id, limit=scan, newest=True))
    found = [e for e in (classify(row) for row in reversed(rows)) if e is not None]
    return found[:limit]


def alert_events(snapshot: HealthSnapshot) -> list[ErrorEvent]:
    """Ticker alerts as rows of the error events table."""
    return [
        ErrorEvent(
            at=a.since,
            level="error",
            impact="customers cannot reach support"
            if a.check == "im-channel-down"
            else "degraded service",
            actor="guard" if a.release_id else "health check",
            what=a.message,
            release_id=a.release_id,
        )
        for a in snapshot.alerts
    ]

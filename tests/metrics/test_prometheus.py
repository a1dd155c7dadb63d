"""The prometheus provider and the guard against a real Prometheus scraping a real service.

Prometheus is Debian's package (`apt-get install -y --no-install-recommends prometheus`),
started by tests/harness/prometheus.py on 127.0.0.1 with a 1s scrape interval. Two
exposition servers stand in for two copies of the service: `healthy` (job target0) and
`canary` (job target1), whose values the tests change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.metrics import ManualClock, MetricActivities, SystemClock
from tests.harness.prometheus import MISSING_REASON, PrometheusServer, find_prometheus
from tests.helpers import recording_server
from tests.metrics.support import (
    ExpositionServer,
    SupportDeskMetrics,
    Traffic,
    checks_input,
)
from warden.models.metrics import (
    ChecksOutcome,
    ChecksReport,
    MeasurementPhase,
    MetricCheck,
)
from warden.settings import Settings

pytestmark = pytest.mark.skipif(find_prometheus() is None, reason=MISSING_REASON)

ERROR_RATE = (
    'sum(rate(external_api_errors_total{{job="{job}"}}[5s])) '
    '/ sum(rate(external_api_requests_total{{job="{job}"}}[5s]))'
)


@dataclass
class Stack:
    prometheus: PrometheusServer
    healthy: SupportDeskMetrics
    canary: SupportDeskMetrics
    canary_traffic: Traffic


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    healthy, canary = SupportDeskMetrics(), SupportDeskMetrics()
    with (
        ExpositionServer(healthy.registry) as healthy_server,
        ExpositionServer(canary.registry) as canary_server,
        Traffic(healthy),
        Traffic(canary) as canary_traffic,
        PrometheusServer([healthy_server.url + "/metrics", canary_server.url + "/metrics"]) as prom,
    ):
        for job in ("target0", "target1"):
            prom.wait_for_series(ERROR_RATE.format(job=job))
        yield Stack(prom, healthy, canary, canary_traffic)


def prometheus_check(name: str, query: str, **fields: Any) -> MetricCheck:
    return MetricCheck.model_validate(
        {"name": name, "query": {"provider": "prometheus", "query": query}, **fields}
    )


async def run(url: str | None, input: Any, clock: Any = None) -> ChecksReport:
    settings = Settings(prometheus_url=url, http_timeout_s=2.0)
    activities = MetricActivities.from_settings(settings, clock=clock or SystemClock())
    try:
        return await ActivityEnvironment().run(activities.run_checks, input)
    finally:
        await activities.aclose()


async def test_a_normal_service_passes(stack: Stack) -> None:
    checks = [
        prometheus_check(
            "external-api-error-rate",
            ERROR_RATE.format(job="target0"),
            max=0.05,
            count=3,
            interval="1s",
        ),
        MetricCheck.model_validate(
            {
                "name": "im-channel-down",
                "template": "im-channel-down",
                "params": {"provider": "prometheus", "selector": 'job="target0"'},
            }
        ),
    ]
    report = await run(stack.prometheus.url, checks_input(checks))
    assert report.outcome == ChecksOutcome.PASSED, report.summary()
    rate = report.check("external-api-error-rate")
    assert rate is not None and rate.successful == 3 and rate.last_value == 0


async def test_error_rate_guard_trips_when_the_error_counter_starts_rising(stack: Stack) -> None:
    guard = [
        prometheus_check(
            "external-api-error-rate", ERROR_RATE.format(job="target1"), max=0.05, interval="1s"
        )
    ]

    async def start_failing() -> None:
        await asyncio.sleep(3)
        stack.canary_traffic.error_share = 0.5

    failing = asyncio.ensure_future(start_failing())
    try:
        report = await run(stack.prometheus.url, checks_input(guard, "guard", window_s=120))
    finally:
        await failing
        stack.canary_traffic.error_share = 0.0
    assert (report.outcome, report.tripped) == (ChecksOutcome.FAILED, "external-api-error-rate")
    state = report.checks[0]
    assert state.successful >= 1
    assert state.last_value is not None and state.last_value > 0.05
    assert 0 < report.window_left_s < 120


async def test_channel_down_alerts_only_after_30s(stack: Stack) -> None:
    stack.canary.im_channel_up.labels("feishu").set(0)
    try:
        stack.prometheus.wait_for_series('min(im_channel_up{job="target1"}) == 0')
        down = MetricCheck.model_validate(
            {
                "name": "im-channel-down",
                "template": "im-channel-down",
                "params": {"provider": "prometheus", "selector": 'job="target1"'},
            }
        )
        report = await run(
            stack.prometheus.url, checks_input([down], "guard", window_s=600), ManualClock()
        )
    finally:
        stack.canary.im_channel_up.labels("feishu").set(1)
    assert report.outcome == ChecksOutcome.ALERT_CHANGED
    phases = [m.phase for m in report.checks[0].measurements]
    assert phases == [MeasurementPhase.PENDING] * 6 + [MeasurementPhase.FAILED]
    assert report.checks[0].alerting
    assert report.window_left_s == 570


async def test_unreachable_prometheus_errors_until_the_guard_is_inconclusive(stack: Stack) -> None:
    healthy = stack.prometheus.targets[0]
    with PrometheusServer([healthy]) as doomed:
        doomed.wait_for_series("min(im_channel_up)")
        guard = [
            prometheus_check(
                "im-channel-up",
                "min(im_channel_up)",
                min=1,
                interval="1s",
                consecutive_error_limit=2,
            )
        ]

        async def stop_prometheus() -> None:
            await asyncio.sleep(2.5)
            await asyncio.to_thread(doomed.stop)

        stopping = asyncio.ensure_future(stop_prometheus())
        report = await run(doomed.url, checks_input(guard, "guard", window_s=120))
        await stopping
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    state = report.checks[0]
    assert state.successful >= 1 and state.consecutive_errors == 3
    assert "Prometheus query" in state.measurements[-1].message
    assert "consecutive errors" in state.message


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("no_such_metric_anywhere", "no series"),
        ("0/0", "NaN"),
        ("1/0", "+Inf"),
    ],
)
async def test_empty_nan_and_inf_are_inconclusive(stack: Stack, query: str, fragment: str) -> None:
    report = await run(stack.prometheus.url, checks_input([prometheus_check("q", query, max=1)]))
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    assert fragment in report.checks[0].measurements[-1].message


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ('im_channel_up{job="target0"}', "returned 2 series"),
        ("im_channel_up[1m]", "returned a matrix"),
        ("sum(rate(", "Prometheus rejected the query (bad_data)"),
    ],
)
async def test_queries_that_cannot_give_one_number_are_errors(
    stack: Stack, query: str, fragment: str
) -> None:
    check = prometheus_check("q", query, max=1, consecutive_error_limit=0)
    report = await run(stack.prometheus.url, checks_input([check]))
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    measurement = report.checks[0].measurements[-1]
    assert measurement.phase == MeasurementPhase.ERROR and fragment in measurement.message


async def test_no_address_configured_is_a_clear_error() -> None:
    check = prometheus_check("q", "up", max=1, consecutive_error_limit=0)
    report = await run(None, checks_input([check]))
    assert "WARDEN_PROMETHEUS_URL" in report.checks[0].measurements[-1].message


def _vector(*args: Any) -> tuple[int, dict[str, str], bytes]:
    body = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "0.01"]}]},
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


async def test_credentials_go_to_the_configured_prometheus_only() -> None:
    with recording_server(_vector) as configured, recording_server(_vector) as other:
        settings = Settings(
            prometheus_url=configured.url, prometheus_token="s3cret", http_timeout_s=2.0
        )
        activities = MetricActivities.from_settings(settings, clock=ManualClock())
        checks = [
            prometheus_check("mine", "up", max=1),
            MetricCheck.model_validate(
                {
                    "name": "theirs",
                    "query": {"provider": "prometheus", "query": "up", "address": other.url},
                    "max": 1,
                }
            ),
        ]
        try:
            report = await ActivityEnvironment().run(activities.run_checks, checks_input(checks))
        finally:
            await activities.aclose()
        basic = Settings(
            prometheus_url=configured.url, prometheus_username="warden", prometheus_password="pw"
        )
        activities = MetricActivities.from_settings(basic, clock=ManualClock())
        try:
            await ActivityEnvironment().run(activities.run_checks, checks_input(checks[:1]))
        finally:
            await activities.aclose()
    assert report.outcome == ChecksOutcome.PASSED
    mine = {k.lower(): v for k, v in configured.requests[0]["headers"].items()}
    theirs = {k.lower(): v for k, v in other.requests[0]["headers"].items()}
    assert mine["authorization"] == "Bearer s3cret"
    assert "authorization" not in theirs
    assert mine["x-trace-id"] == "trace-metrics" and mine["x-request-id"]
    assert configured.requests[0]["path"].startswith("/api/v1/query?query=up")
    basic_headers = {k.lower(): v for k, v in configured.requests[1]["headers"].items()}
    assert basic_headers["authorization"].startswith("Basic ")


async def test_or_vector_0_reads_0_when_the_target_is_down_and_up_says_so() -> None:
    """What docs/metric-checks.md warns about: `... or vector(0)` turns a target that is down
    into a healthy 0, so a guard passes; paired with `up`, the same guard fails."""
    metrics = SupportDeskMetrics()
    server = ExpositionServer(metrics.registry).__enter__()
    try:
        with Traffic(metrics), PrometheusServer([server.url + "/metrics"]) as prom:
            errors = 'sum(rate(external_api_errors_total{job="target0"}[5s]))'
            prom.wait_for_series(ERROR_RATE.format(job="target0"))
            server.__exit__()  # the service goes down; Prometheus' next scrapes fail
            prom.wait_for_series('up{job="target0"} == 0')
            prom.wait_for_series(f"absent({errors})")  # its series went stale
            checks = [
                prometheus_check("error-rate", f"{errors} or vector(0)", max=0.05),
                prometheus_check("service-up", 'min(up{job="target0"})', min=1),
            ]
            report = await run(prom.url, checks_input(checks))
    finally:
        server.__exit__()  # (stopping it again is a no-op)
    rate, up = report.check("error-rate"), report.check("service-up")
    assert rate is not None and rate.last_value == 0 and rate.successful == 1  # looks healthy
    assert up is not None and up.last_value == 0
    assert (report.outcome, report.checks[1].name) == (ChecksOutcome.FAILED, "service-up")

"""The scrape provider against a real exposition endpoint (prometheus_client over HTTP)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from activities.metrics import (
    ManualClock,
    MeasureContext,
    MetricActivities,
    MetricError,
    SystemClock,
)
from activities.metrics.providers import ScrapeProvider
from tests.helpers import recording_server
from tests.metrics.support import SupportDeskMetrics, Traffic, checks_input, serving
from warden.http import new_client
from warden.models.metrics import (
    CheckAction,
    ChecksOutcome,
    MeasurementPhase,
    MetricCheck,
    ScrapeQuery,
)
from warden.settings import Settings


def scrape(**fields: Any) -> ScrapeQuery:
    return ScrapeQuery.model_validate(fields)


def context(base_url: str, clock: ManualClock, interval_s: float = 10.0) -> MeasureContext:
    return MeasureContext(
        base_url=base_url,
        trace_id="trace-scrape",
        release_id="release-support-desk-1.0.0",
        stage="pilot",
        check="c",
        interval_s=interval_s,
        now=clock.now(),
    )


@pytest.fixture
async def http() -> Any:
    client = new_client()
    yield client
    await client.aclose()


async def test_gauge_min_over_channels_names_the_channel_that_is_down(
    http: httpx.AsyncClient,
) -> None:
    metrics = SupportDeskMetrics()
    metrics.im_channel_up.labels("feishu").set(0)
    with serving(metrics) as target:
        reading = await ScrapeProvider(http).measure(
            scrape(kind="gauge", metric="im_channel_up", aggregate="min"),
            context(target.url, ManualClock()),
            None,
        )
    assert reading.value == 0
    assert 'channel="feishu"' in reading.message


async def test_label_matches_are_exact(http: httpx.AsyncClient) -> None:
    metrics = SupportDeskMetrics()
    metrics.im_channel_up.labels("feishu").set(0)
    with serving(metrics) as target:
        provider = ScrapeProvider(http)
        clock = ManualClock()
        wecom = await provider.measure(
            scrape(kind="gauge", metric="im_channel_up", labels={"channel": "wecom"}),
            context(target.url, clock),
            None,
        )
        nothing = await provider.measure(
            scrape(kind="gauge", metric="im_channel_up", labels={"channel": "slack"}),
            context(target.url, clock),
            None,
        )
    assert wecom.value == 1
    assert nothing.value is None and "no series of im_channel_up matches" in nothing.message


async def test_ratio_of_counter_increases_between_two_scrapes(http: httpx.AsyncClient) -> None:
    metrics = SupportDeskMetrics()
    metrics.api_requests.labels("crm").inc(1000)  # history before the baseline does not count
    metrics.api_errors.labels("crm").inc(500)
    query = scrape(
        kind="ratio",
        metric="external_api_errors_total",
        denominator="external_api_requests_total",
    )
    clock = ManualClock()
    provider = ScrapeProvider(http)
    with serving(metrics) as target:
        baseline = await provider.measure(query, context(target.url, clock), None)
        assert baseline.value is None and baseline.retry_in_s == 10.0
        metrics.api_requests.labels("crm").inc(200)
        metrics.api_errors.labels("crm").inc(20)
        clock.advance(10)
        reading = await provider.measure(query, context(target.url, clock), baseline.state)
    assert reading.value == pytest.approx(0.1)
    assert reading.retry_in_s is None


async def test_ratio_without_traffic_is_inconclusive_and_keeps_its_baseline(
    http: httpx.AsyncClient,
) -> None:
    metrics = SupportDeskMetrics()
    query = scrape(
        kind="ratio",
        metric="external_api_errors_total",
        denominator="external_api_requests_total",
    )
    clock = ManualClock()
    provider = ScrapeProvider(http)
    with serving(metrics) as target:
        baseline = await provider.measure(query, context(target.url, clock), None)
        clock.advance(10)
        quiet = await provider.measure(query, context(target.url, clock), baseline.state)
        assert quiet.value is None and "no traffic" in quiet.message
        metrics.api_requests.labels("crm").inc(10)
        metrics.api_errors.labels("crm").inc(1)
        clock.advance(10)
        later = await provider.measure(query, context(target.url, clock), quiet.state)
    assert quiet.state == baseline.state
    assert later.value == pytest.approx(0.1)
    assert "over 20.0s" in later.message


async def test_rate_per_second_and_a_counter_reset(http: httpx.AsyncClient) -> None:
    metrics = SupportDeskMetrics()
    metrics.sla_total.inc(100)
    query = scrape(kind="rate", metric="sla_conversations_total")
    clock = ManualClock()
    provider = ScrapeProvider(http)
    with serving(metrics) as target:
        baseline = await provider.measure(query, context(target.url, clock), None)
        metrics.sla_total.inc(50)
        clock.advance(10)
        rate = await provider.measure(query, context(target.url, clock), baseline.state)
    assert rate.value == pytest.approx(5.0)
    restarted = SupportDeskMetrics()  # the service restarted: its counters start again at zero
    restarted.sla_total.inc(20)
    with serving(restarted) as target:
        clock.advance(10)
        after_reset = await provider.measure(query, context(target.url, clock), rate.state)
    assert after_reset.value == pytest.approx(2.0)


async def test_counter_named_without_total_suffix(http: httpx.AsyncClient) -> None:
    metrics = SupportDeskMetrics()
    metrics.sla_overdue.inc(7)
    with serving(metrics) as target:
        reading = await ScrapeProvider(http).measure(
            scrape(kind="counter", metric="sla_overdue"), context(target.url, ManualClock()), None
        )
    assert reading.value == 7


async def test_histogram_quantile_over_the_interval(http: httpx.AsyncClient) -> None:
    metrics = SupportDeskMetrics()
    for _ in range(100):
        metrics.im_latency.labels("wecom").observe(5.0)  # slow history, before the baseline
    query = scrape(kind="quantile", metric="im_channel_latency_seconds", quantile=0.95)
    clock = ManualClock()
    provider = ScrapeProvider(http)
    with serving(metrics) as target:
        baseline = await provider.measure(query, context(target.url, clock), None)
        for _ in range(95):
            metrics.im_latency.labels("wecom").observe(0.03)
        for _ in range(5):
            metrics.im_latency.labels("feishu").observe(2.0)
        clock.advance(10)
        reading = await provider.measure(query, context(target.url, clock), baseline.state)
        clock.advance(10)
        idle = await provider.measure(query, context(target.url, clock), reading.state)
    # 95 of 100 new observations fall in the (0.025, 0.05] bucket: p95 is its upper bound.
    assert reading.value == pytest.approx(0.05)
    assert idle.value is None and "no observations" in idle.message


async def test_age_of_a_timestamp_gauge(http: httpx.AsyncClient) -> None:
    metrics = SupportDeskMetrics()
    clock = ManualClock()
    query = scrape(kind="age", metric="audit_last_event_timestamp_seconds", aggregate="max")
    with serving(metrics) as target:
        never = await ScrapeProvider(http).measure(query, context(target.url, clock), None)
        metrics.audit_last.set(clock.now().timestamp() - 400)
        old = await ScrapeProvider(http).measure(query, context(target.url, clock), None)
    assert never.value is None and "nothing recorded yet" in never.message
    assert old.value == pytest.approx(400)


async def test_what_the_scrape_provider_cannot_do_is_said_plainly(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValidationError, match="not a PromQL engine"):
        scrape(kind="gauge", metric="sum(rate(http_requests_total[5m]))")
    with pytest.raises(ValidationError, match="matches labels exactly"):
        scrape(kind="gauge", metric="http_requests_total", labels={"status_class": "=~5.."})
    with pytest.raises(ValidationError, match="needs 'denominator'"):
        scrape(kind="ratio", metric="external_api_errors_total")
    metrics = SupportDeskMetrics()
    metrics.im_latency.labels("wecom").observe(0.1)
    with serving(metrics) as target:
        provider = ScrapeProvider(http)
        ctx = context(target.url, ManualClock())
        with pytest.raises(MetricError, match="is a histogram; use kind 'quantile'"):
            await provider.measure(
                scrape(kind="gauge", metric="im_channel_latency_seconds"), ctx, None
            )
        with pytest.raises(MetricError, match="not a histogram"):
            await provider.measure(
                scrape(kind="quantile", metric="im_channel_up", quantile=0.5), ctx, None
            )
        missing = await provider.measure(scrape(kind="gauge", metric="no_such_metric"), ctx, None)
    assert missing.value is None and "not exposed" in missing.message


async def test_scrapes_carry_trace_headers_and_resolve_against_the_base_url(
    http: httpx.AsyncClient,
) -> None:
    body = b'# TYPE im_channel_up gauge\nim_channel_up{channel="wecom"} 1\n'
    with recording_server(lambda *a: (200, {"Content-Type": "text/plain"}, body)) as server:
        reading = await ScrapeProvider(http).measure(
            scrape(kind="gauge", metric="im_channel_up", url="internal/metrics"),
            context(server.url + "/desk", ManualClock()),
            None,
        )
    assert reading.value == 1
    request = server.requests[0]
    assert request["path"] == "/desk/internal/metrics"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-trace-id"] == "trace-scrape"
    assert headers["x-request-id"]


async def test_an_endpoint_that_is_not_an_exposition_is_an_error(http: httpx.AsyncClient) -> None:
    with recording_server(lambda *a: (500, {}, b"boom")) as server:
        with pytest.raises(MetricError, match="HTTP 500"):
            await ScrapeProvider(http).measure(
                scrape(kind="gauge", metric="x"), context(server.url, ManualClock()), None
            )


# -- the activity against a real service ------------------------------------------------------


def template(name: str, **fields: Any) -> MetricCheck:
    return MetricCheck.model_validate({"name": name, "template": name, **fields})


async def run(input: Any, clock: Any) -> Any:
    from temporalio.testing import ActivityEnvironment

    activities = MetricActivities.from_settings(Settings(), clock=clock)
    try:
        return await ActivityEnvironment().run(activities.run_checks, input)
    finally:
        await activities.aclose()


async def test_a_normal_service_passes_the_pre_promotion_checks() -> None:
    metrics = SupportDeskMetrics()
    metrics.audit_last.set(SystemClock().now().timestamp())
    checks = [
        template("external-api-error-rate", interval="1s", count=2),
        template("im-channel-down"),
        template("audit-gap"),
        template("latency-p95", interval="1s"),
    ]
    with serving(metrics) as target, Traffic(metrics):
        report = await run(checks_input(checks, base_url=target.url), SystemClock())
    assert report.outcome == ChecksOutcome.PASSED, report.summary()
    rate = report.check("external-api-error-rate")
    assert rate is not None and rate.successful == 2 and rate.last_value == 0


async def test_error_rate_guard_trips_when_the_error_counter_starts_rising() -> None:
    metrics = SupportDeskMetrics()
    guard = [template("external-api-error-rate", interval="1s")]
    with serving(metrics) as target, Traffic(metrics) as traffic:

        async def start_failing() -> None:
            await asyncio.sleep(3)
            traffic.error_share = 0.5

        failing = asyncio.ensure_future(start_failing())
        report = await run(
            checks_input(guard, "guard", window_s=120, base_url=target.url), SystemClock()
        )
        await failing
    assert (report.outcome, report.tripped, report.action) == (
        ChecksOutcome.FAILED,
        "external-api-error-rate",
        CheckAction.ROLLBACK,
    )
    state = report.checks[0]
    assert state.successful >= 1  # it watched a healthy service before the errors started
    assert state.last_value is not None and state.last_value > 0.05
    assert 0 < report.window_left_s < 120


async def test_channel_down_for_30s_raises_an_alert_and_clears_it() -> None:
    metrics = SupportDeskMetrics()
    clock = ManualClock()
    down = [template("im-channel-down")]
    with serving(metrics) as target:
        metrics.im_channel_up.labels("feishu").set(0)
        raised = await run(checks_input(down, "guard", window_s=600, base_url=target.url), clock)
        assert raised.outcome == ChecksOutcome.ALERT_CHANGED
        state = raised.checks[0]
        assert state.alerting and 'channel="feishu"' in state.message
        phases = [m.phase for m in state.measurements]
        assert phases == [MeasurementPhase.PENDING] * 6 + [MeasurementPhase.FAILED]
        assert raised.window_left_s == 570  # alerted once down for 30s, not before

        metrics.im_channel_up.labels("feishu").set(1)
        cleared = await run(
            checks_input(
                down,
                "guard",
                window_s=raised.window_left_s,
                state=raised.checks,
                base_url=target.url,
            ),
            clock,
        )
    assert cleared.outcome == ChecksOutcome.ALERT_CHANGED
    assert not cleared.checks[0].alerting


async def test_no_audit_event_for_five_minutes_rolls_back() -> None:
    metrics = SupportDeskMetrics()
    clock = ManualClock()
    metrics.audit_last.set(clock.now().timestamp())
    with serving(metrics) as target:
        report = await run(
            checks_input([template("audit-gap")], "guard", window_s=3600, base_url=target.url),
            clock,
        )
    assert (report.outcome, report.action) == (ChecksOutcome.FAILED, CheckAction.ROLLBACK)
    assert report.checks[0].last_value == pytest.approx(310)
    assert report.finished_at is not None and report.started_at is not None
    assert report.finished_at - report.started_at == timedelta(seconds=310)  # first age > 300s

"""The built-in templates against the sample service (examples/support_desk) as a real process.

The Support Desk runs on 127.0.0.1 with its traffic simulator; its `/_sim` endpoints take a
channel down or pause its audit trail, the way an incident would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.metrics import MetricActivities, SystemClock
from tests.metrics.support import checks_input
from warden.models.metrics import CheckAction, ChecksOutcome, ChecksReport, MetricCheck
from warden.settings import Settings

launcher = pytest.importorskip("examples.support_desk.launcher")


@pytest.fixture(scope="module")
def desk() -> Iterator[Any]:
    with launcher.SupportDeskProcess(simulate_rps=30, seed=7) as process:
        yield process


def template(name: str, **fields: Any) -> MetricCheck:
    return MetricCheck.model_validate({"name": name, "template": name, **fields})


async def run(input: Any) -> ChecksReport:
    activities = MetricActivities.from_settings(Settings(), clock=SystemClock())
    try:
        return await ActivityEnvironment().run(activities.run_checks, input)
    finally:
        await activities.aclose()


def sim(desk: Any, path: str) -> None:
    httpx.post(f"{desk.url}/_sim/{path}", trust_env=False, timeout=5).raise_for_status()


async def test_a_healthy_support_desk_passes_every_template(desk: Any) -> None:
    checks = [
        template("im-channel-down"),
        template("audit-gap"),
        template("sla-overdue-rate", interval="2s"),
        template("latency-p95", interval="2s", inconclusive_limit=1, count=2),
        template("external-api-error-rate", interval="2s", params={"selector": 'api="im-gateway"'}),
    ]
    report = await run(checks_input(checks, base_url=desk.url))
    assert report.outcome == ChecksOutcome.PASSED, report.summary()


async def test_a_channel_down_raises_an_alert_naming_it_and_clears_it(desk: Any) -> None:
    down = [template("im-channel-down", interval="1s", **{"for": "2s"})]
    sim(desk, "channels/feishu/down")
    try:
        raised = await run(checks_input(down, "guard", window_s=60, base_url=desk.url))
    finally:
        sim(desk, "channels/feishu/up")
    assert raised.outcome == ChecksOutcome.ALERT_CHANGED
    assert raised.checks[0].alerting and 'channel="feishu"' in raised.checks[0].message
    cleared = await run(
        checks_input(
            down, "guard", window_s=raised.window_left_s, state=raised.checks, base_url=desk.url
        )
    )
    assert cleared.outcome == ChecksOutcome.ALERT_CHANGED and not cleared.checks[0].alerting


async def test_a_paused_audit_trail_trips_the_audit_gap_guard(desk: Any) -> None:
    gap = [template("audit-gap", interval="1s", params={"threshold": 2})]
    sim(desk, "audit/pause")
    try:
        report = await run(checks_input(gap, "guard", window_s=60, base_url=desk.url))
    finally:
        sim(desk, "audit/resume")
    assert (report.outcome, report.action) == (ChecksOutcome.FAILED, CheckAction.ROLLBACK)
    assert report.checks[0].last_value is not None and report.checks[0].last_value > 2

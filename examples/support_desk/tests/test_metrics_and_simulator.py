"""The metrics Release Warden's checks read, moved by the simulator and the dev endpoints."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from examples.support_desk.launcher import SupportDeskProcess
from examples.support_desk.metrics import CHANNELS
from examples.support_desk.tests.conftest import eventually, metric, scrape, set_percent

METRIC_NAMES = (
    "im_channel_up",
    "im_channel_latency_seconds_bucket",
    "sla_conversations_total",
    "sla_overdue_total",
    "sla_compliance_ratio",
    "task_pipeline_items_total",
    "external_api_requests_total",
    "external_api_errors_total",
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "audit_last_event_timestamp_seconds",
    "audit_events_total",
)


def test_metrics_move_with_simulated_traffic(flags_file: Path) -> None:
    with SupportDeskProcess(flags_file=flags_file, simulate_rps=80, seed=3) as desk:
        assert eventually(
            lambda: (
                metric(scrape(desk.url), "sla_conversations_total") >= 5
                and metric(scrape(desk.url), "task_pipeline_items_total", state="done") >= 1
            ),
            timeout=20,
        )
        text = scrape(desk.url)
    for name in METRIC_NAMES:
        assert f"\n{name}" in text, name
    for channel in CHANNELS:
        assert metric(text, "im_channel_up", channel=channel) == 1
    assert metric(text, "im_channel_latency_seconds_count") > 0
    assert metric(text, "http_requests_total", status_class="2xx") > 0
    assert metric(text, "external_api_requests_total", api="im-gateway") > 0
    assert metric(text, "audit_events_total") > 0
    assert metric(text, "audit_last_event_timestamp_seconds") > 1.7e9
    assert 0.0 <= metric(text, "sla_compliance_ratio") <= 1.0
    assert metric(text, "external_api_errors_total") == 0  # the good build at rest makes no errors


def test_the_bad_build_under_traffic_shows_errors_as_the_flag_ramps(flags_file: Path) -> None:
    with SupportDeskProcess(flags_file=flags_file, build="bad", simulate_rps=80, seed=4) as desk:
        assert eventually(
            lambda: (
                metric(scrape(desk.url), "http_requests_total", route="/solutions/suggest") >= 10
            )
        )
        assert metric(scrape(desk.url), "external_api_errors_total", api="ai-solutions") == 0
        set_percent(flags_file, "ai.solutions", 50)
        assert eventually(
            lambda: metric(scrape(desk.url), "http_requests_total", status_class="5xx") >= 3,
            timeout=20,
        )
        assert metric(scrape(desk.url), "external_api_errors_total", api="ai-solutions") >= 3


def test_dev_endpoints_take_a_channel_down_raise_sla_misses_and_pause_audit(
    flags_file: Path,
) -> None:
    with SupportDeskProcess(flags_file=flags_file, simulate_rps=80, seed=5) as desk:
        with httpx.Client(base_url=desk.url, timeout=5) as http:
            assert http.post("/_sim/channels/feishu/down").json()["up"] is False
            assert metric(scrape(desk.url), "im_channel_up", channel="feishu") == 0
            body = {
                "customerId": "c1",
                "channel": "feishu",
                "sla": {"tier": "standard", "firstResponseMinutes": 5},
            }
            assert http.post("/conversations", json=body).status_code == 409
            http.post("/_sim/channels/feishu/up")
            assert metric(scrape(desk.url), "im_channel_up", channel="feishu") == 1

            http.post("/_sim/sla", params={"overdueRate": 1.0})
            before = metric(scrape(desk.url), "sla_overdue_total")
            assert eventually(
                lambda: metric(scrape(desk.url), "sla_overdue_total") >= before + 5, timeout=20
            )
            assert metric(scrape(desk.url), "sla_compliance_ratio") < 1.0

            http.post("/_sim/audit/pause")
            paused_at = metric(scrape(desk.url), "audit_events_total")
            http.get("/healthz")
            http.post("/requirements", json={"title": "t", "priority": "low", "owner": "erin"})
            assert metric(scrape(desk.url), "audit_events_total") == paused_at
            http.post("/_sim/audit/resume")
            assert eventually(lambda: metric(scrape(desk.url), "audit_events_total") > paused_at)
        assert "/_sim" not in httpx.get(f"{desk.url}/openapi.json").text


def test_the_launcher_stops_the_process_it_started(flags_file: Path) -> None:
    desk = SupportDeskProcess(flags_file=flags_file).start()
    pid = desk.pid
    assert pid is not None and httpx.get(f"{desk.url}/healthz").json()["status"] == "ok"
    desk.stop()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"support desk {pid} still running")

"""Built-in templates and the check model as a plan author meets them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from warden.models.metrics import (
    CheckAction,
    MetricCheck,
    PrometheusQuery,
    ScrapeQuery,
    pre_checks_window,
)
from warden.models.plan import PlanError, parse_plan
from warden.models.templates import TEMPLATES, list_templates, render_templates

PLAN = """
service: support-desk
version: "1.4.0"
owner: alice
stages:
  - name: pilot
    base_url: http://127.0.0.1:8080
    checks:
      - name: im-channel-down
        template: im-channel-down
      - name: sla-overdue
        template: sla-overdue-rate
        params: {threshold: 0.02}
      - name: audit-gap
        template: audit-gap
      - name: latency
        template: latency-p95
        params: {provider: prometheus, selector: 'channel="wecom"', threshold: 0.8}
      - name: crm-errors
        template: external-api-error-rate
        params: {selector: 'api="crm"'}
        failure_limit: 2
      - name: http-5xx
        query:
          provider: prometheus
          query: sum(rate(http_requests_total{status_class="5xx"}[1m])) / sum(rate(http_requests_total[1m]))
        max: 0.01
        for: 2m
        interval: 30s
        action: pause
"""


def test_a_plan_with_every_template_loads_with_the_documented_thresholds() -> None:
    stage = parse_plan(yaml.safe_load(PLAN)).stages[0]
    checks = {c.name: c for c in stage.checks}
    down = checks["im-channel-down"]
    assert (down.min, down.hold, down.action) == (1, timedelta(seconds=30), CheckAction.NOTIFY)
    assert isinstance(down.query, ScrapeQuery) and down.query.metric == "im_channel_up"
    sla = checks["sla-overdue"]
    assert (sla.max, sla.action, sla.notify) == (0.02, CheckAction.NOTIFY, ["committee"])
    gap = checks["audit-gap"]
    assert (gap.max, gap.action, gap.notify) == (300, CheckAction.ROLLBACK, ["operations"])
    latency = checks["latency"]
    assert isinstance(latency.query, PrometheusQuery)
    assert 'im_channel_latency_seconds_bucket{channel="wecom"}' in latency.query.query
    crm = checks["crm-errors"]
    assert isinstance(crm.query, ScrapeQuery) and crm.query.labels == {"api": "crm"}
    assert crm.failure_limit == 2
    custom = checks["http-5xx"]
    assert (custom.hold, custom.action) == (timedelta(minutes=2), CheckAction.PAUSE)


def test_a_scrape_template_refuses_a_regex_selector() -> None:
    plan = yaml.safe_load(PLAN)
    plan["stages"][0]["checks"] = [
        {
            "name": "x",
            "template": "external-api-error-rate",
            "params": {"selector": 'api=~"crm|erp"'},
        }
    ]
    with pytest.raises(PlanError, match="matches labels exactly"):
        parse_plan(plan)


def test_unknown_template_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="built-in templates: audit-gap"):
        MetricCheck.model_validate({"name": "x", "template": "cpu"})


def test_a_check_needs_a_query_and_a_threshold() -> None:
    with pytest.raises(ValueError, match="needs a threshold"):
        MetricCheck.model_validate(
            {"name": "x", "query": {"provider": "prometheus", "query": "up"}}
        )
    with pytest.raises(ValueError, match="needs 'query' or 'template'"):
        MetricCheck.model_validate({"name": "x", "max": 1})


def test_the_template_listing_shows_thresholds_and_actions() -> None:
    rows = {r.name: r for r in list_templates()}
    assert set(rows) == set(TEMPLATES)
    assert (rows["im-channel-down"].condition, rows["im-channel-down"].hold) == (">= 1", "30s")
    assert rows["sla-overdue-rate"].condition == "<= 0.05"
    assert rows["audit-gap"].action == "rollback"
    assert rows["audit-gap"].prometheus_query == "time() - max(audit_last_event_timestamp_seconds)"
    text = render_templates()
    assert "external-api-error-rate" in text and "notify" in text


def test_pre_checks_window_covers_count_hold_and_baseline() -> None:
    down = MetricCheck.model_validate({"name": "a", "template": "im-channel-down"})
    rate = MetricCheck.model_validate(
        {"name": "b", "template": "external-api-error-rate", "count": 3, "interval": "20s"}
    )
    assert pre_checks_window([down]) == timedelta(seconds=30)
    assert pre_checks_window([rate]) == timedelta(seconds=40 + 10)

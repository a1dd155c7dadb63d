"""The gate's worker metrics, as the SDK runtime serves them to Prometheus."""

from __future__ import annotations

import re

import httpx
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment

from activities.contract import ContractActivities
from examples.support_desk.launcher import SupportDeskProcess, free_port
from warden.models.contract import ContractInput, ContractSpec
from warden.settings import Settings


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of `name` whose labels include `labels`."""
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    return None


async def test_contract_runs_are_counted_and_timed_on_the_worker_endpoint(
    settings: Settings, bad_desk: SupportDeskProcess
) -> None:
    port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    env = ActivityEnvironment()
    env.metric_meter = runtime.metric_meter
    spec = ContractSpec(max_examples=3, seed=5, include=["suggestSolutions"])
    report = await env.run(
        ContractActivities(settings).run_contract_tests,
        ContractInput(
            release_id="release-support-desk-9",
            stage="dev",
            base_url=bad_desk.url,
            spec=spec,
            trace_id="t",
        ),
    )
    assert not report.passed

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert sample(text, "warden_contract_runs_total", result="failed") == 1
    assert sample(text, "warden_contract_run_duration_seconds_count", result="failed") == 1
    assert (sample(text, "warden_contract_run_duration_seconds_sum", result="failed") or 0) > 0
    assert sample(text, "warden_contract_failures_total") == report.failures_total
    assert sample(text, "warden_contract_test_cases_total") == report.test_cases

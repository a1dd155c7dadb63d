"""Guard latency: from the moment a service starts failing to the guard's rollback decision.

A real service (prometheus_client over HTTP on 127.0.0.1) serves healthy traffic; at a
moment the benchmark picks, its error counter starts rising (half of all external API calls
fail). The clock stops when the `run_checks` activity returns FAILED. Measured for the
scrape provider (reading the service's /metrics) and for the prometheus provider against a
real Prometheus scraping every second; the guard polls every second. Target: p95 ≤
interval + 2s. Prints numbers; asserts nothing.

    .venv/bin/python -m bench.guard_latency [--runs 5] [--provider scrape|prometheus|both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.metrics import MetricActivities, SystemClock
from tests.harness.prometheus import MISSING_REASON, PrometheusServer, find_prometheus
from tests.metrics.support import ExpositionServer, SupportDeskMetrics, Traffic
from warden.models.metrics import ChecksInput, ChecksOutcome, MetricCheck
from warden.settings import Settings

INTERVAL_S = 1.0
THRESHOLD = 0.05
PROMQL = (
    'sum(rate(external_api_errors_total{{job="{job}"}}[5s])) '
    '/ sum(rate(external_api_requests_total{{job="{job}"}}[5s]))'
)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def guard_input(check: MetricCheck, base_url: str) -> ChecksInput:
    return ChecksInput(
        release_id="release-bench-1.0.0",
        stage="pilot",
        base_url=base_url,
        phase="guard",
        checks=[check],
        trace_id="bench-guard-latency",
        window_s=300,
    )


async def time_to_decision(
    activities: MetricActivities, input: ChecksInput, traffic: Traffic, healthy_for_s: float
) -> float:
    """Seconds from the first failing request to the guard's FAILED report."""
    started: dict[str, float] = {}

    async def start_failing() -> None:
        await asyncio.sleep(healthy_for_s)
        started["at"] = time.monotonic()
        traffic.error_share = 0.5

    failing = asyncio.ensure_future(start_failing())
    try:
        report = await ActivityEnvironment().run(activities.run_checks, input)
    finally:
        failing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await failing
    decided = time.monotonic()
    if report.outcome != ChecksOutcome.FAILED or "at" not in started:
        raise RuntimeError(
            f"guard ended {report.outcome.value} before the failure: {report.summary()}"
        )
    return decided - started["at"]


async def bench_scrape(runs: int, offset: Callable[[int], float]) -> list[float]:
    check = MetricCheck.model_validate(
        {
            "name": "external-api-error-rate",
            "template": "external-api-error-rate",
            "interval": f"{INTERVAL_S}s",
            "max": THRESHOLD,
        }
    )
    activities = MetricActivities.from_settings(Settings(), clock=SystemClock())
    latencies = []
    try:
        for run in range(runs):
            metrics = SupportDeskMetrics()
            with ExpositionServer(metrics.registry) as target, Traffic(metrics) as traffic:
                latencies.append(
                    await time_to_decision(
                        activities, guard_input(check, target.url), traffic, offset(run)
                    )
                )
    finally:
        await activities.aclose()
    return latencies


async def bench_prometheus(runs: int, offset: Callable[[int], float]) -> list[float]:
    metrics = [SupportDeskMetrics() for _ in range(runs)]
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(ExpositionServer(m.registry)) for m in metrics]
        traffics = [stack.enter_context(Traffic(m)) for m in metrics]
        prometheus = stack.enter_context(
            PrometheusServer([s.url + "/metrics" for s in servers], scrape_interval_s=1.0)
        )
        for run in range(runs):
            prometheus.wait_for_series(PROMQL.format(job=f"target{run}"))
        settings = Settings(prometheus_url=prometheus.url)
        activities = MetricActivities.from_settings(settings, clock=SystemClock())
        latencies = []
        try:
            for run in range(runs):
                check = MetricCheck.model_validate(
                    {
                        "name": "external-api-error-rate",
                        "query": {
                            "provider": "prometheus",
                            "query": PROMQL.format(job=f"target{run}"),
                        },
                        "interval": f"{INTERVAL_S}s",
                        "max": THRESHOLD,
                    }
                )
                latencies.append(
                    await time_to_decision(
                        activities, guard_input(check, servers[run].url), traffics[run], offset(run)
                    )
                )
        finally:
            await activities.aclose()
    return latencies


def report(name: str, latencies: list[float]) -> None:
    target = INTERVAL_S + 2.0
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    shown = " ".join(f"{v:.2f}" for v in latencies)
    verdict = "within" if p95 <= target else "OVER"
    print(
        f"{name:<11} runs={len(latencies)}  p50={p50:.2f}s  p95={p95:.2f}s  "
        f"max={max(latencies):.2f}s  mean={statistics.fmean(latencies):.2f}s  "
        f"({verdict} target {target:.1f}s)  [{shown}]"
    )


async def main(args: Any) -> None:
    # Failures start at different points of the polling cycle: 2.0s, 2.3s, 2.6s, ...
    def offset(run: int) -> float:
        return 2.0 + (run * 0.3) % INTERVAL_S

    print(
        f"guard latency: error counter starts rising -> run_checks returns FAILED "
        f"(interval {INTERVAL_S:g}s, threshold {THRESHOLD:g})"
    )
    if args.provider in ("scrape", "both"):
        report("scrape", await bench_scrape(args.runs, offset))
    if args.provider in ("prometheus", "both"):
        if find_prometheus() is None:
            print(f"prometheus  skipped: {MISSING_REASON}")
        else:
            report("prometheus", await bench_prometheus(args.runs, offset))


def cli() -> None:
    logging.basicConfig(level=logging.ERROR)  # the guards' trip warnings are the expected outcome
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--provider", choices=["scrape", "prometheus", "both"], default="both")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()

"""History size: events per release for a typical plan, and with a 7-day bake of 10 s guards.

The typical plan has the shape of examples/plans/support-desk.yaml: four stages, each with a
smoke check and a contract gate; `ai.solutions` to 100% in dev and staging, 5→25→50→100% with
8 s guarded bakes in pilot, 25→100% in production; pilot has three metric checks (error rate,
channel down, latency p95) and a two-of-three sign-off; production two checks (error rate, SLA
overdue). Cheap equivalents stand in for services that cannot run here:
- smoke, contract and metrics go to one loopback HTTP service: the contract is a one-operation
  OpenAPI document it serves (schemathesis runs for real, `not_a_server_error` and
  `status_code_conformance` checks), the metric checks read the same thresholds and actions
  from its JSON through the `http-json` provider instead of scraping the sample service;
- `run_checks` runs with a `ManualClock` (virtual time), so 8 s bakes and a 7-day window take
  as long as their measurements, not as long as the window; every measurement is still a real
  HTTP request.

Variants: typical; typical + a 7-day guarded production bake with its checks every 10 s
(healthy all week); the same with a notify-only channel-down check going down for 100 s once
a (virtual) day, so an alert is raised and cleared 7 times. Target: ≤ 5,000 events.

    .venv/bin/python -m bench.history_size [--variant typical|week|week-alerts|all]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench.common import (
    BenchResult,
    DevServer,
    LoopbackService,
    Verdict,
    bench_settings,
    history_counts,
    release_worker,
    stop_on_sigterm,
)

TARGET_EVENTS = 5000
WEEK = "7d"
#: The channel-down check measures every 10 s: 8,640 requests per virtual day.
PER_DAY = 8640

OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "loopback", "version": "1.0.0"},
    "paths": {
        "/healthz": {
            "get": {
                "operationId": "health",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        }
    },
}


def metric(name: str, path: str, **fields: Any) -> dict[str, Any]:
    url = fields.pop("url", "/metrics.json")
    return {
        "name": name,
        "query": {"provider": "http-json", "url": url, "json_path": path},
        **fields,
    }


def external_errors(interval: str) -> dict[str, Any]:
    return metric(
        "external-api-errors",
        "external_api_error_rate",
        max=0.05,
        interval=interval,
        action="rollback",
        notify=["operations"],
    )


def channel_down(interval: str, url: str = "/metrics.json") -> dict[str, Any]:
    return metric(
        "channel-down",
        "im_channel_up",
        url=url,
        min=1,
        interval=interval,
        action="notify",
        notify=["operations"],
        **{"for": "30s"},
    )


def latency_p95(interval: str) -> dict[str, Any]:
    return metric(
        "latency-p95", "latency_p95_seconds", max=0.8, interval=interval, action="rollback"
    )


def sla_overdue(interval: str) -> dict[str, Any]:
    return metric(
        "sla-overdue",
        "sla_overdue_rate",
        max=0.05,
        interval=interval,
        action="notify",
        notify=["committee"],
        inconclusive_limit=1_000_000,
    )


def typical_plan(base_url: str, version: str, variant: str) -> dict[str, Any]:
    contract = {
        "openapi": "/openapi.json",
        "max_examples": 15,
        "seed": 20261123,
        "time_budget": "3m",
        "checks": ["not_a_server_error", "status_code_conformance"],
    }
    smoke = [{"name": "health", "path": "/healthz"}]
    production: dict[str, Any] = {
        "name": "production",
        "base_url": base_url,
        "smoke": smoke,
        "flags": [{"flag": "ai.solutions", "steps": [25, 100], "bake": "8s"}],
        "checks": [external_errors("1s"), sla_overdue("1m")],
    }
    if variant in ("week", "week-alerts"):
        production["bake"] = WEEK
        production["checks"] = [external_errors("10s"), sla_overdue("10s")]
        if variant == "week-alerts":
            production["checks"].append(channel_down("10s", url="/channel.json"))
    return {
        "service": "history",
        "version": version,
        "owner": "alice",
        "flags": ["ai.solutions"],
        "rollback": {"scope": "release"},
        "stages": [
            {
                "name": "dev",
                "base_url": base_url,
                "smoke": smoke,
                "flags": [{"flag": "ai.solutions"}],
                "contract": contract,
            },
            {
                "name": "staging",
                "base_url": base_url,
                "smoke": smoke,
                "flags": [{"flag": "ai.solutions"}],
                "contract": contract,
            },
            {
                "name": "pilot",
                "base_url": base_url,
                "smoke": smoke,
                "flags": [{"flag": "ai.solutions", "steps": [5, 25, 50, 100], "bake": "8s"}],
                "checks": [external_errors("1s"), channel_down("5s"), latency_p95("2s")],
                "contract": contract,
                "signoff": {
                    "approvers": ["carol", "dave", "erin"],
                    "quorum": 2,
                    "deadline": "4h",
                    "escalate_before": "1h",
                },
            },
            production,
        ],
    }


class Channel:
    """/channel.json: the channel goes down for 100 s (10 measurements) once a virtual day."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self) -> tuple[int, str, bytes]:
        self.requests += 1
        up = 0 if 100 <= self.requests % PER_DAY < 110 else 1
        return 200, "application/json", json.dumps({"im_channel_up": up}).encode()


def healthy_metrics() -> tuple[int, str, bytes]:
    body = {
        "external_api_error_rate": 0.002,
        "im_channel_up": 1,
        "latency_p95_seconds": 0.21,
        "sla_overdue_rate": 0.01,
    }
    return 200, "application/json", json.dumps(body).encode()


async def one_release(
    client: Any, task_queue: str, base_url: str, variant: str, settings: Any
) -> dict[str, Any]:
    from warden.flagstore.flagd_file import flag_file, init_flag_file
    from warden.models.plan import parse_plan
    from warden.models.release import DecisionRequest, ReleaseInput, ReleaseState
    from workflows.release import ReleaseWorkflow

    for env in ("dev", "staging", "pilot", "production"):
        init_flag_file(flag_file(settings.flags_path, env), {"ai.solutions": 0})
    plan = parse_plan(typical_plan(base_url, f"1.0.{uuid.uuid4().hex[:8]}", variant))
    started = time.monotonic()
    handle = await client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(plan=plan, started_by="alice", trace_id=uuid.uuid4().hex),
        id=plan.release_id,
        task_queue=task_queue,
    )
    while True:
        status = await handle.query(ReleaseWorkflow.status)
        if status.state.value == "waiting_approval":
            break
        if status.state.ended:
            raise RuntimeError(f"release ended before the sign-off: {status.current_step}")
        await asyncio.sleep(0.2)
    for user in ("carol", "dave"):
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user=user, comment="ok")
        )
    result = await handle.result()
    if result.outcome != ReleaseState.PROMOTED:
        raise RuntimeError(f"{variant} release ended {result.outcome.value}: {result.reason}")
    status = await handle.query(ReleaseWorkflow.status)
    counts = await history_counts(handle)
    counts["alerts"] = len(status.alerts)
    counts["wall_s"] = round(time.monotonic() - started, 1)
    return counts


async def measure(variants: list[str]) -> dict[str, dict[str, Any]]:
    from activities.metrics import ManualClock, MetricActivities

    out: dict[str, dict[str, Any]] = {}
    routes = {
        "/openapi.json": lambda: (200, "application/json", json.dumps(OPENAPI).encode()),
        "/metrics.json": healthy_metrics,
    }
    for variant in variants:
        routes["/channel.json"] = Channel()
        with (
            tempfile.TemporaryDirectory(prefix="warden-bench-history-") as tmp,
            LoopbackService(routes) as service,
        ):
            async with DevServer() as server, AsyncExitStack() as stack:
                client = await server.client()
                task_queue = f"bench-history-{uuid.uuid4().hex[:8]}"
                settings = bench_settings(Path(tmp), task_queue, server.address)
                metrics = MetricActivities.from_settings(settings, clock=ManualClock())
                stack.push_async_callback(metrics.aclose)
                worker = release_worker(
                    client,
                    settings,
                    task_queue=task_queue,
                    activity_overrides=[metrics.run_checks],
                    stack=stack,
                )
                await stack.enter_async_context(worker)
                out[variant] = await one_release(client, task_queue, service.url, variant, settings)
                out[variant]["requests"] = service.requests
    return out


LABELS = {
    "typical": "typical (support-desk shape)",
    "week": "typical + 7-day production bake, checks every 10 s, healthy",
    "week-alerts": "same + channel down 100 s once a day (7 alerts raised and cleared)",
}


async def run(quick: bool = False, variants: list[str] | None = None) -> BenchResult:
    variants = variants or (["typical", "week"] if quick else ["typical", "week", "week-alerts"])
    began = time.monotonic()
    # the alert variant's guard warnings are its expected outcome, not news
    logging.getLogger("warden.metrics").setLevel(logging.ERROR)
    counts = await measure(variants)
    result = BenchResult(
        name="history_size",
        title="History size: events per release",
        measures=(
            "Events in the workflow history of one promoted release (support-desk-shaped plan: smoke, contract, "
            "flag ramp with guarded bakes, metric checks, two-of-three sign-off), counted with "
            "`fetch_history_events`. Loopback stand-ins: the contract is a one-operation OpenAPI document, "
            "metric checks read JSON through the `http-json` provider, and `run_checks` uses a virtual clock."
        ),
        headers=[
            "plan",
            "events",
            "history size",
            "activities",
            "audit markers",
            "timers",
            "updates",
            "requests to the service",
            "alerts",
            "wall",
        ],
    )
    for variant in variants:
        c = counts[variant]
        activities = sum(v for k, v in c.items() if k.startswith("activity:"))
        result.rows.append(
            [
                LABELS[variant],
                str(c["events"]),
                f"{c['bytes'] / 1024:.0f} KiB",
                str(activities),
                str(c.get("marker:core_local_activity", 0)),
                str(c.get("timer_started", 0)),
                str(c.get("workflow_execution_update_accepted", 0)),
                str(c["requests"]),
                str(c["alerts"]),
                f"{c['wall_s']:.0f} s",
            ]
        )
    for variant in variants:
        if variant.startswith("week"):
            events = counts[variant]["events"]
            result.verdicts.append(
                Verdict(
                    LABELS[variant],
                    f"{events} events",
                    f"≤ {TARGET_EVENTS}",
                    events <= TARGET_EVENTS,
                )
            )
    if "typical" in counts:
        kinds = {k: v for k, v in counts["typical"].items() if k.startswith("activity:")}
        result.notes.append(
            "Activities of the typical release: "
            + ", ".join(f"{k[9:]} {v}" for k, v in sorted(kinds.items()))
            + "."
        )
    result.raw = counts
    result.seconds = time.monotonic() - began
    return result


def cli() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--variant", choices=["typical", "week", "week-alerts", "all"], default="all"
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    variants = None if args.variant == "all" else [args.variant]
    print(asyncio.run(run(quick=args.quick, variants=variants)).text())


if __name__ == "__main__":
    cli()

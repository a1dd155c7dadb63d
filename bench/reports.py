"""Reports: building a go/no-go for a release with about 400 history events, and a governance
review over 100,000 audit rows on SQLite.

go/no-go: a real release on a dev server and the shipped worker, whose pilot stage ramps one
flag in many small steps with a guard (an http-json check against a loopback service) watching
one-second bakes, parks at its sign-off; then the report is built the way the worker's activity
builds it (history read from Temporal, the status query, the audit trail, the score) and stored
in all three formats (Markdown, JSON, HTML with the matplotlib chart), timed over several runs
after one warm-up. Target: ≤ 1 s.

governance review: 100,000 audit rows over one month in a fresh SQLite file (with the guard
observations of 200 releases), then the review (counts by action, result and user, the quiet
gaps, permission changes, contract pass rate, guard rates, errors per day), timed over several
runs. Target: ≤ 3 s.

    .venv/bin/python -m bench.reports [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    BenchResult,
    DevServer,
    LoopbackService,
    Verdict,
    bench_settings,
    history_counts,
    percentile,
    release_worker,
    secs,
)

GO_NO_GO_TARGET_S = 1.0
REVIEW_TARGET_S = 3.0
AUDIT_ROWS = 100_000


def _plan(base_url: str, version: str, steps: int) -> dict[str, object]:
    guard = {
        "name": "error-rate",
        "query": {"provider": "http-json", "url": "/metrics.json", "json_path": "error_rate"},
        "max": 0.05,
        "interval": "1s",
        "phases": ["guard"],
    }
    ramp = [max(1, round(100 * (i + 1) / steps)) for i in range(steps)]
    return {
        "service": "bench-desk",
        "version": version,
        "owner": "alice",
        "flags": ["ai.solutions"],
        "stages": [
            {
                "name": "pilot",
                "base_url": base_url,
                "flags": [{"flag": "ai.solutions", "steps": sorted(set(ramp)), "bake": "1s"}],
                "checks": [guard],
                "bake": "3s",
                "signoff": {"approvers": ["carol", "dave"], "quorum": 1, "deadline": "1h"},
            }
        ],
    }


async def go_no_go(runs: int, steps: int) -> dict[str, object]:
    from activities.reports import ReportBuilder
    from activities.reports.store import store_report
    from warden.flagstore.flagd_file import flag_file, init_flag_file
    from warden.models.plan import parse_plan
    from warden.models.release import DecisionRequest, ReleaseInput, ReleaseState
    from warden.stores.audit import AuditStore
    from workflows.release import ReleaseWorkflow

    metrics = json.dumps({"error_rate": 0.01}).encode()
    with (
        tempfile.TemporaryDirectory(prefix="warden-bench-reports-") as tmp,
        LoopbackService({"/metrics.json": lambda: (200, "application/json", metrics)}) as service,
    ):
        async with DevServer() as server, AsyncExitStack() as stack:
            client = await server.client()
            task_queue = f"bench-reports-{uuid.uuid4().hex[:8]}"
            settings = bench_settings(Path(tmp), task_queue, server.address)
            init_flag_file(flag_file(settings.flags_path, "pilot"), {"ai.solutions": 0})
            await stack.enter_async_context(
                release_worker(client, settings, task_queue=task_queue, stack=stack)
            )
            plan = parse_plan(_plan(service.url, f"1.0.{uuid.uuid4().hex[:6]}", steps))
            handle = await client.start_workflow(
                ReleaseWorkflow.run,
                ReleaseInput(plan=plan, started_by="alice", trace_id="bench"),
                id=plan.release_id,
                task_queue=task_queue,
            )
            while True:
                status = await handle.query(ReleaseWorkflow.status)
                if status.state == ReleaseState.WAITING_APPROVAL or status.state.ended:
                    break
                await asyncio.sleep(0.2)
            counts = await history_counts(handle)
            store = AuditStore(settings.audit_url)
            builder = ReportBuilder(settings, client, store)
            timings, sizes = [], {}
            for attempt in range(runs + 1):
                began = time.perf_counter()
                report = await builder.go_no_go(plan.release_id, "pilot")
                paths = store_report(settings.artifacts_path, plan.release_id, "bench", report)
                if attempt:  # the first one warms up (imports matplotlib)
                    timings.append(time.perf_counter() - began)
                sizes = {fmt: path.stat().st_size for fmt, path in paths.items()}
            store.close()
            await handle.execute_update(
                ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol")
            )
            await handle.result()
    return {
        "events": counts["events"],
        "score": report.score,
        "guard_points": sum(len(g.points) for g in report.guards),
        "timings": timings,
        "sizes": sizes,
    }


def review(runs: int, rows: int) -> dict[str, object]:
    from activities.reports.build import governance_review
    from warden.models.audit import AuditEvent
    from warden.stores.audit import AuditStore

    # what a busy month holds: mostly release steps, a few denials, access changes rare
    actions = [
        ("stage.promoted", "promoted"),
        ("flag.changed", "applied"),
        ("contract.result", "passed"),
        ("contract.result", "failed"),
        ("signoff.approval", "accepted"),
        ("api.denied", "forbidden"),
        ("checks.result", "passed"),
    ]
    users = [f"user-{i}" for i in range(40)]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    spacing = timedelta(days=30) / rows
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="warden-bench-review-") as tmp:
        store = AuditStore(f"sqlite:///{tmp}/audit.db")
        batch: list[AuditEvent] = []
        at = start
        for i in range(rows):
            # every 5,000th event is followed by a quiet stretch of ten minutes
            at += spacing + (timedelta(minutes=10) if i % 5000 == 4999 else timedelta(0))
            action, result = actions[rng.randrange(len(actions))]
            if i % 1000 == 0:
                action, result = ("access.requested", "waiting")
            batch.append(
                AuditEvent(
                    eventId=str(uuid.UUID(int=rng.getrandbits(128))),
                    userId=users[rng.randrange(len(users))],
                    action=action,
                    entity=f"release:bench-{i % 200}",
                    result=result,
                    timestamp=min(at, start + timedelta(days=30, seconds=-1)),
                    releaseId=f"release-bench-{i % 200}",
                )
            )
            if len(batch) == 500:
                store.write(batch)
                batch = []
        store.write(batch)
        store.write_guard_observations(
            {
                "release_id": f"release-bench-{r}",
                "run_id": "run",
                "stage": "pilot",
                "check_name": "error-rate",
                "finished_at": start + timedelta(hours=r),
                "samples": 40,
                "breaches": r % 3,
                "value_sum": 0.4,
                "value_max": 0.05,
            }
            for r in range(200)
        )
        timings = []
        for _ in range(runs):
            began = time.perf_counter()
            result = governance_review(store, "2026-11")
            timings.append(time.perf_counter() - began)
        store.close()
    return {"events": result.events, "gaps": len(result.gaps), "timings": timings}


async def run(quick: bool = False) -> BenchResult:
    began = time.monotonic()
    runs = 3 if quick else 10
    g = await go_no_go(runs, steps=12 if quick else 25)
    r = await asyncio.to_thread(review, 3 if quick else 5, AUDIT_ROWS)
    g_times = list(g["timings"])  # type: ignore[call-overload]
    r_times = list(r["timings"])  # type: ignore[call-overload]
    result = BenchResult(
        name="reports",
        title="Reports",
        measures=(
            "Building and storing a go/no-go (history, status, audit trail, score; Markdown, "
            "JSON and HTML with its chart) for a release parked at its sign-off; a governance "
            f"review over {AUDIT_ROWS:,} audit rows on SQLite."
        ),
        headers=["what", "size", "p50", "p95", "max"],
        rows=[
            [
                "go/no-go",
                f"{g['events']} history events, {g['guard_points']} guard points",
                secs(statistics.median(g_times)),
                secs(percentile(g_times, 0.95)),
                secs(max(g_times)),
            ],
            [
                "governance review",
                f"{r['events']:,} audit rows, {r['gaps']} gaps",
                secs(statistics.median(r_times)),
                secs(percentile(r_times, 0.95)),
                secs(max(r_times)),
            ],
        ],
        verdicts=[
            Verdict(
                f"go/no-go, {g['events']} history events",
                secs(max(g_times)),
                f"≤ {GO_NO_GO_TARGET_S:g} s",
                max(g_times) <= GO_NO_GO_TARGET_S,
            ),
            Verdict(
                f"governance review, {AUDIT_ROWS:,} rows (SQLite)",
                secs(max(r_times)),
                f"≤ {REVIEW_TARGET_S:g} s",
                max(r_times) <= REVIEW_TARGET_S,
            ),
        ],
        notes=[
            f"stored sizes (bytes): {g['sizes']}",
            f"readiness score of the release: {g['score']}",
        ],
    )
    result.seconds = time.monotonic() - began
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs and a shorter ramp")
    args = parser.parse_args()
    print(asyncio.run(run(quick=args.quick)).text())


if __name__ == "__main__":
    main()

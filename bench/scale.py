"""Scale: 1,000 releases parked at a sign-off gate on one worker, then all approved.

Plan (each release its own version): two stages —
  pilot       sign-off by approvers [carol, dave], quorum 2 (deadline 24h, escalation 1h before);
  production  one smoke check against a loopback service, at a path unique to the release.
So a release parks after: release.started audit, governance check (a production stage is in the
plan), stage.started audit, signoff.requested audit, the sign-off notice activity, a timer.

Measured, with the worker in a separate process (`warden.runtime.worker.build_worker`'s worker, or the same
with the options under test) so its RSS is its own:
- RSS of the worker process with every release parked (target ≤ 300 MB), and its peak;
- after `execute_update(approve)` by carol then dave for every release (`--concurrency`
  releases at a time): latency from the deciding approval's update returning at the client
  to the production smoke probe reaching the loopback service (the first effect of the next
  stage), p50 / p99;
- drain: from the first approval sent to the last release closed (server close times).

Baseline, same dev server, same driver, same concurrency: `BareParkedWorkflow` on a worker with
the SDK's default options — parks on `wait_condition` until two `approve` updates arrived, then
runs the same smoke activity once. Target: release drain / bare drain ≤ 1.3.

    .venv/bin/python -m bench.scale [--count 1000] [--concurrency 50]
        [--options JSON]       # worker options of the release worker (default: as built)
        [--compare JSON ...]   # more release-worker variants, measured after it on the same server
e.g. --compare '{"max_cached_workflows": 250, "max_concurrent_workflow_tasks": 10}'
(see `worker_overrides` for the keys).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.smoke import SmokeActivities
    from bench.common import (
        ROOT,
        BenchResult,
        DevServer,
        LoopbackService,
        Verdict,
        bench_settings,
        cpu_seconds,
        gather_limited,
        ms,
        peak_rss_mb,
        percentile,
        ratio,
        release_worker,
        rss_mb,
        secs,
        stop_on_sigterm,
        stop_process,
    )
    from warden.models.plan import ReleasePlan, parse_plan
    from warden.models.release import DecisionRequest, ReleaseInput
    from warden.models.smoke import SmokeCheck, SmokeInput
    from workflows import policies

RSS_TARGET_MB = 300.0
#: The release worker with each run importing the workflow modules afresh.
ISOLATED = {"workflow_sandbox": "isolated"}
DRAIN_TARGET = 1.3


@workflow.defn(name="BareParkedWorkflow")
class BareParkedWorkflow:
    """Parks until two approvals arrived (updates), then runs one smoke activity."""

    def __init__(self) -> None:
        self.approvals = 0

    @workflow.run
    async def run(self, input: SmokeInput) -> bool:
        await workflow.wait_condition(lambda: self.approvals >= 2)
        report = await workflow.execute_activity_method(
            SmokeActivities.run_smoke_checks, input, **policies.smoke_options(timedelta(seconds=5))
        )
        return report.passed

    @workflow.update
    async def approve(self, request: DecisionRequest) -> int:
        self.approvals += 1
        return self.approvals

    @workflow.query
    def parked(self) -> bool:
        return self.approvals < 2


def scale_plan(base_url: str, index: int, run_id: str) -> ReleasePlan:
    return parse_plan(
        {
            "service": "scale",
            "version": f"{run_id}.{index}",
            "owner": "alice",
            "stages": [
                {
                    "name": "pilot",
                    "base_url": base_url,
                    "signoff": {"approvers": ["carol", "dave"], "quorum": 2, "deadline": "24h"},
                },
                {
                    "name": "production",
                    "base_url": base_url,
                    "smoke": [{"name": "health", "path": f"/healthz/release/{run_id}/{index}"}],
                },
            ],
        }
    )


# -- the worker process ---------------------------------------------------------------------


def worker_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """JSON options → `Worker` keyword arguments.

    Any `Worker` keyword with a JSON value passes as is (`max_cached_workflows`,
    `max_concurrent_workflow_tasks`, `max_concurrent_workflow_task_polls`, ...); and
    `autoscaling_pollers: true` (poller autoscaling for workflow and activity tasks),
    `passthrough: [modules]` (passed through as well), `unsandboxed: true`,
    `workflow_task_threads: n` (size of the workflow task thread pool),
    `workflow_sandbox: "shared" | "isolated"` (as the setting of that name).
    """
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import PollerBehaviorAutoscaling, UnsandboxedWorkflowRunner

    from warden.runtime.worker import workflow_runner
    from warden.settings import Settings

    out = dict(options)
    if out.pop("autoscaling_pollers", False):
        out["workflow_task_poller_behavior"] = PollerBehaviorAutoscaling()
        out["activity_task_poller_behavior"] = PollerBehaviorAutoscaling()
    extra = out.pop("passthrough", None) or []
    sandbox = out.pop("workflow_sandbox", None)
    if extra or sandbox:
        settings = Settings(workflow_sandbox=sandbox) if sandbox else Settings()
        out["workflow_runner"] = workflow_runner(settings, extra_passthrough=extra)
    if out.pop("unsandboxed", False):
        out["workflow_runner"] = UnsandboxedWorkflowRunner()
    threads = out.pop("workflow_task_threads", None)
    if threads:
        out["workflow_task_executor"] = ThreadPoolExecutor(max_workers=int(threads))
    return out


async def serve(
    kind: str, address: str, task_queue: str, state_dir: Path, options: dict[str, Any]
) -> None:
    from temporalio.worker import Worker

    from warden.runtime.client import connect

    settings = bench_settings(state_dir, task_queue, address)
    client = await connect(settings, autostart=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with AsyncExitStack() as stack:
        if kind == "release":
            worker = release_worker(
                client, settings, task_queue=task_queue, stack=stack, **worker_overrides(options)
            )
        else:
            smoke = SmokeActivities()
            worker = Worker(
                client,
                task_queue=task_queue,
                workflows=[BareParkedWorkflow],
                activities=[smoke.run_smoke_checks],
                **worker_overrides(options),
            )
        async with worker:
            (state_dir / READY_FILE).touch()
            await stop.wait()


# -- the driver ------------------------------------------------------------------------------


@dataclass
class Phase:
    kind: str
    options: dict[str, Any]
    count: int = 0
    rss_idle: float = 0.0
    rss_parked: float = 0.0
    rss_peak: float = 0.0
    park_s: float = 0.0
    cpu_park_s: float = 0.0
    cpu_drain_s: float = 0.0
    server_cpu_drain_s: float = 0.0
    send_s: float = 0.0
    drain_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    unfinished: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "options": self.options,
            "count": self.count,
            "rss_idle_mb": round(self.rss_idle, 1),
            "rss_parked_mb": round(self.rss_parked, 1),
            "rss_peak_mb": round(self.rss_peak, 1),
            "park_s": round(self.park_s, 2),
            "cpu_park_s": round(self.cpu_park_s, 2),
            "cpu_drain_s": round(self.cpu_drain_s, 2),
            "server_cpu_drain_s": round(self.server_cpu_drain_s, 2),
            "send_s": round(self.send_s, 2),
            "drain_s": round(self.drain_s, 2),
            "latency_p50_ms": round(percentile(self.latencies, 0.5) * 1000, 1),
            "latency_p99_ms": round(percentile(self.latencies, 0.99) * 1000, 1),
            "retries": self.retries,
            "unfinished": self.unfinished,
        }


async def _retrying(call: Any, phase: Phase) -> Any:
    """RPCs the dev server throttles (RESOURCE_EXHAUSTED) are retried and counted."""
    from temporalio.service import RPCError, RPCStatusCode

    delay = 0.1
    while True:
        try:
            return await call()
        except RPCError as exc:
            if exc.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                raise
            phase.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


#: No release parked for this long means the worker has stopped making progress.
STALL_S = 180.0


class StallWatchdog:
    """Ends a phase whose parked count stops rising, instead of waiting for ever."""

    def __init__(self, kind: str, count: int) -> None:
        self.kind = kind
        self.count = count
        self.best = -1
        self.since = time.monotonic()

    def check(self, parked: int) -> None:
        now = time.monotonic()
        if parked > self.best:
            self.best, self.since = parked, now
        elif now - self.since > STALL_S:
            raise RuntimeError(
                f"{self.kind}: stalled at {parked} of {self.count} parked, no progress for "
                f"{STALL_S:.0f}s (workflow tasks timing out on the worker; see its worker.log)"
            )


#: Created by the worker process once it polls.
READY_FILE = "ready"


async def _wait_ready(process: subprocess.Popen[bytes], state_dir: Path, kind: str) -> None:
    deadline = time.monotonic() + 120
    while not (state_dir / READY_FILE).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"{kind} worker did not start: {(state_dir / 'worker.log').read_text()[-2000:]}"
            )
        await asyncio.sleep(0.1)


def _audit_count(db: Path, action: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM audit_events WHERE action = ?", (action,)
                ).fetchone()[0]
            )
    except sqlite3.Error:
        return 0


async def run_phase(
    kind: str,
    server: DevServer,
    service: LoopbackService,
    count: int,
    concurrency: int,
    options: dict[str, Any],
    tmp: Path,
    log: Any,
) -> Phase:
    from temporalio.client import WorkflowExecutionStatus

    from workflows.release import ReleaseWorkflow

    phase = Phase(kind=kind, options=options, count=count)
    client = await server.client()
    run_id = uuid.uuid4().hex[:8]
    task_queue = f"bench-scale-{kind}-{run_id}"
    state_dir = tmp / f"{kind}-{run_id}"
    state_dir.mkdir(parents=True)
    # Both streams go to a file: the SDK core writes its log to stdout, and a pipe nobody
    # reads fills up and blocks the core's threads, which stalls the whole worker.
    with open(state_dir / "worker.log", "ab") as worker_log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.scale",
                "worker",
                kind,
                server.address,
                task_queue,
                str(state_dir),
                json.dumps(options),
            ],
            cwd=ROOT,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    try:
        await _wait_ready(process, state_dir, kind)
        await asyncio.sleep(1.0)
        phase.rss_idle = rss_mb(process.pid)
        cpu0 = cpu_seconds(process.pid)

        began = time.time()
        if kind == "release":
            inputs = [
                ReleaseInput(
                    plan=scale_plan(service.url, i, run_id),
                    started_by="alice",
                    trace_id=f"{run_id}-{i}",
                )
                for i in range(count)
            ]
            handles = await gather_limited(
                concurrency,
                (
                    _retrying(
                        lambda inp=inp: client.start_workflow(
                            ReleaseWorkflow.run, inp, id=inp.plan.release_id, task_queue=task_queue
                        ),
                        phase,
                    )
                    for inp in inputs
                ),
            )
            paths = [f"/healthz/release/{run_id}/{i}" for i in range(count)]
            db = state_dir / "audit.db"
            watchdog = StallWatchdog(kind, count)
            while (parked_count := _audit_count(db, "signoff.requested")) < count:
                watchdog.check(parked_count)
                await asyncio.sleep(0.25)
        else:
            handles = await gather_limited(
                concurrency,
                (
                    _retrying(
                        lambda i=i: client.start_workflow(
                            BareParkedWorkflow.run,
                            SmokeInput(
                                release_id=f"bare-{run_id}-{i}",
                                stage="production",
                                base_url=service.url,
                                checks=[
                                    SmokeCheck(name="health", path=f"/healthz/bare-{run_id}/{i}")
                                ],
                                trace_id=f"{run_id}-{i}",
                            ),
                            id=f"bare-{run_id}-{i}",
                            task_queue=task_queue,
                        ),
                        phase,
                    )
                    for i in range(count)
                ),
            )
            paths = [f"/healthz/bare-{run_id}/{i}" for i in range(count)]
            pending = list(handles)
            watchdog = StallWatchdog(kind, count)
            while pending:
                watchdog.check(count - len(pending))
                parked = await gather_limited(
                    concurrency, (_retrying(lambda h=h: h.query("parked"), phase) for h in pending)
                )
                pending = [h for h, p in zip(pending, parked, strict=True) if not p]
        phase.park_s = time.time() - began
        await asyncio.sleep(2.0)
        phase.rss_parked = rss_mb(process.pid)
        phase.cpu_park_s = cpu_seconds(process.pid) - cpu0
        print(
            f"  {kind}: {count} parked in {phase.park_s:.1f}s, worker RSS {phase.rss_parked:.0f} MB",
            file=log,
            flush=True,
        )

        decided: dict[int, float] = {}
        cpu1 = cpu_seconds(process.pid)
        server_cpu1 = cpu_seconds(server.pid)
        send_started = time.time()

        async def approve(index: int) -> None:
            handle = handles[index]
            for user in ("carol", "dave"):
                request = DecisionRequest(stage="pilot", user=user, comment="bench")
                await _retrying(lambda r=request: handle.execute_update("approve", r), phase)
            decided[index] = time.time()

        await gather_limited(concurrency, (approve(i) for i in range(count)))
        phase.send_s = time.time() - send_started
        deadline = time.monotonic() + max(600.0, count * 1.0)
        query = f'TaskQueue = "{task_queue}" AND ExecutionStatus = "Running"'
        while time.monotonic() < deadline:
            running = (await client.count_workflows(query)).count
            if running == 0:
                break
            await asyncio.sleep(0.5)
        phase.cpu_drain_s = cpu_seconds(process.pid) - cpu1
        phase.server_cpu_drain_s = cpu_seconds(server.pid) - server_cpu1
        phase.rss_peak = peak_rss_mb(process.pid)
        descriptions = await gather_limited(concurrency, (h.describe() for h in handles))
        closed = [
            d.close_time.timestamp()
            for d in descriptions
            if d.status == WorkflowExecutionStatus.COMPLETED
        ]
        phase.unfinished = count - len(closed)
        phase.drain_s = (max(closed) - send_started) if closed else float("nan")
        phase.latencies = [
            service.first_seen[path] - decided[i]
            for i, path in enumerate(paths)
            if path in service.first_seen
        ]
        print(
            f"  {kind}: drained in {phase.drain_s:.1f}s, decision→next step p50 "
            f"{percentile(phase.latencies, 0.5) * 1000:.0f} ms, p99 {percentile(phase.latencies, 0.99) * 1000:.0f} ms",
            file=log,
            flush=True,
        )
    finally:
        stop_process(process, timeout=30)
    return phase


async def measure(
    count: int,
    concurrency: int,
    variants: list[dict[str, Any]],
    baseline_options: dict[str, Any],
    log: Any,
    server_options: dict[str, Any] | None = None,
) -> tuple[list[Phase], Phase]:
    """The bare baseline, then one release phase per worker variant, on one dev server."""
    with (
        tempfile.TemporaryDirectory(prefix="warden-bench-scale-") as tmp,
        LoopbackService() as service,
    ):
        async with DevServer(**(server_options or {})) as server:
            bare = await run_phase(
                "bare", server, service, count, concurrency, baseline_options, Path(tmp), log
            )
            releases = [
                await run_phase(
                    "release", server, service, count, concurrency, options, Path(tmp), log
                )
                for options in variants
            ]
    return releases, bare


def describe_options(options: dict[str, Any]) -> str:
    return (
        ", ".join(f"{k}={v}" for k, v in options.items())
        or "as `warden.runtime.worker.build_worker` builds it"
    )


async def run(
    quick: bool = False,
    count: int | None = None,
    concurrency: int = 50,
    options: dict[str, Any] | None = None,
    compare: list[dict[str, Any]] | None = None,
    baseline_options: dict[str, Any] | None = None,
    server_options: dict[str, Any] | None = None,
    log: Any = None,
) -> BenchResult:
    """`options`: the release worker's options (default: as built); `compare`: more variants,
    each measured the same way after it (the targets are judged on the first)."""
    count = count or (200 if quick else 1000)
    if compare is None and not quick:
        compare = [dict(ISOLATED)]  # what the default sandbox setting saves
    variants = [options or {}, *(compare or [])]
    baseline_options = baseline_options or {}
    log = log or sys.stderr
    began = time.monotonic()
    releases, bare = await measure(
        count, concurrency, variants, baseline_options, log, server_options
    )
    result = BenchResult(
        name="scale",
        title=f"Scale: {count} releases parked at a sign-off, then approved",
        measures=(
            f"{count} two-stage releases (pilot: sign-off by carol and dave, quorum 2, deadline 24h; "
            "production: one loopback smoke check) started and parked at the pilot sign-off on one "
            "worker process, then approved by carol and dave with `execute_update` "
            f"({concurrency} releases at a time). RSS: the worker process with every release parked, "
            "and its peak. Latency: the deciding approval's update returns at the client → the "
            "production smoke probe reaches the service (the first effect of the next stage). "
            "Drain: first approval sent → last release closed (server close times). Baseline: the "
            "same count of `BareParkedWorkflow` (parks until two `approve` updates, then one smoke "
            "activity) on a worker with the SDK's default options, same dev server, same driver."
        ),
        headers=[
            "workload",
            "park all",
            "RSS idle",
            "RSS parked",
            "RSS peak",
            "latency p50",
            "latency p99",
            "drain",
            "drain / bare",
            "worker CPU (park)",
            "worker CPU (drain)",
            "server CPU (drain)",
        ],
    )
    for phase in [*releases, bare]:
        label = (
            "bare baseline"
            if phase.kind == "bare"
            else f"releases, worker {describe_options(phase.options)}"
        )
        result.rows.append(
            [
                label,
                secs(phase.park_s),
                f"{phase.rss_idle:.0f} MB",
                f"{phase.rss_parked:.0f} MB",
                f"{phase.rss_peak:.0f} MB",
                ms(percentile(phase.latencies, 0.5)),
                ms(percentile(phase.latencies, 0.99)),
                secs(phase.drain_s),
                f"{ratio(phase.drain_s, bare.drain_s):.2f}",
                secs(phase.cpu_park_s),
                secs(phase.cpu_drain_s),
                secs(phase.server_cpu_drain_s),
            ]
        )
    # The targets are judged on the worker as built; other variants are there to compare.
    for index, release in enumerate(releases[:1]):
        which = "" if index == 0 else f" ({describe_options(release.options)})"
        drain_ratio = ratio(release.drain_s, bare.drain_s)
        result.verdicts += [
            Verdict(
                f"worker RSS, {count} parked{which}",
                f"{release.rss_parked:.0f} MB (peak {release.rss_peak:.0f} MB)",
                f"≤ {RSS_TARGET_MB:.0f} MB",
                release.rss_peak <= RSS_TARGET_MB,
            ),
            Verdict(
                f"drain release/bare{which}",
                f"{drain_ratio:.2f}",
                f"≤ {DRAIN_TARGET}",
                drain_ratio <= DRAIN_TARGET,
            ),
        ]
    first = releases[0]
    per_release = (first.rss_parked - first.rss_idle) * 1024 / max(count, 1)
    result.notes.append(
        f"Worker memory per parked release (as built): about {per_release:.0f} KiB above the idle worker; "
        f"bare: {(bare.rss_parked - bare.rss_idle) * 1024 / max(count, 1):.0f} KiB."
    )
    retries = sum(p.retries for p in [*releases, bare])
    if retries:
        result.notes.append(f"Throttled RPCs retried: {retries}.")
    else:
        result.notes.append(
            "No RPC was throttled (RESOURCE_EXHAUSTED), so the dev server runs with its defaults "
            "(frontend.namespaceRPS and frontend.rps 2400/s, burst ratio 2); no dynamic config is set."
        )
    unfinished = {
        describe_options(p.options) if p.kind == "release" else "bare": p.unfinished
        for p in [*releases, bare]
        if p.unfinished
    }
    if unfinished:
        result.notes.append(f"Not finished: {unfinished}.")
    result.raw = {"releases": [p.summary() for p in releases], "bare": bare.summary()}
    result.seconds = time.monotonic() - began
    return result


def cli() -> None:
    stop_on_sigterm()
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        kind, address, task_queue, state_dir, options = sys.argv[2:7]
        import logging  # the worker's own warnings (failed workflow tasks, poller errors) to its log

        logging.basicConfig(
            level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        core_log = os.environ.get("WARDEN_BENCH_CORE_LOG")
        if core_log:  # e.g. "temporalio_sdk_core=debug": the SDK core's own log, for diagnosis
            from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig

            Runtime.set_default(
                Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=core_log)))
            )
        asyncio.run(serve(kind, address, task_queue, Path(state_dir), json.loads(options)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--count", type=int, default=None, help="releases (default 1000; 200 with --quick)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="releases started/approved at a time"
    )
    parser.add_argument(
        "--options", default="{}", help="JSON worker options for the release worker"
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        help="JSON worker options of another release worker to measure too (repeatable)",
    )
    parser.add_argument(
        "--baseline-options", default="{}", help="JSON worker options for the bare worker"
    )
    parser.add_argument(
        "--server",
        default="{}",
        help='JSON DevServer options, e.g. {"in_memory": true, "dynamic_config": {...}}',
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON too")
    args = parser.parse_args()
    result = asyncio.run(
        run(
            quick=args.quick,
            count=args.count,
            concurrency=args.concurrency,
            options=json.loads(args.options),
            compare=[json.loads(c) for c in args.compare],
            baseline_options=json.loads(args.baseline_options),
            server_options=json.loads(args.server),
        )
    )
    print(result.text())
    if args.json:
        print(json.dumps(result.raw))


if __name__ == "__main__":
    cli()

"""Overhead: a four-stage release against a bare Temporal workflow making the same activity calls.

The release: four stages (dev, staging, pilot, production), each with one smoke check against a
loopback HTTP service, no flags, no sign-off. It makes 5 activity calls (`governance_status`
once, because a production stage is in the plan, then `run_smoke_checks` per stage) and
records 14 audit events (`release.started`, per stage `stage.started`, `smoke.result`,
`stage.promoted`, and `release.finished`) in its audit journal, which writes them in batches
with the audit local activity.

The bare workflow (`BareStagedWorkflow`) makes exactly those calls, in the same order, with the
same options from `workflows.policies` and the same input types, and nothing else: no status
model, timeline, checklist, memo upserts, query or update handlers. Both run on one worker (the
worker `warden.runtime.worker.build_worker` builds, with the bare workflow registered beside the release
workflows), in this process, against one dev server, interleaved run by run. Wall time is from
`start_workflow` to the result arriving at the client. Target: release / bare ≤ 1.25.

    .venv/bin/python -m bench.overhead [--runs 30] [--batch 20] [--rounds 3] [--options JSON]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.governance import GovernanceActivities
    from activities.smoke import SmokeActivities
    from bench.common import (
        BenchResult,
        DevServer,
        LoopbackService,
        Verdict,
        bench_settings,
        history_counts,
        ms,
        percentile,
        ratio,
        release_worker,
        stop_on_sigterm,
    )
    from warden.models.plan import ReleasePlan, parse_plan
    from warden.models.release import ReleaseInput, ReleaseState
    from warden.models.smoke import SmokeInput
    from workflows import policies
    from workflows.common import AuditJournal, audit_event
    from workflows.release import ReleaseWorkflow

TARGET = 1.25
STAGES = ("dev", "staging", "pilot", "production")


@workflow.defn(name="BareStagedWorkflow")
class BareStagedWorkflow:
    """The activity calls of a release through its stages, and nothing of Release Warden's own."""

    @workflow.run
    async def run(self, input: ReleaseInput) -> bool:
        plan = input.plan
        rid = plan.release_id
        journal = AuditJournal()

        def audit(action: str, result: str, **fields: Any) -> None:
            journal.record(
                audit_event(
                    action, result, user="warden", release_id=rid, trace_id=input.trace_id, **fields
                )
            )

        audit("release.started", "started", entity=f"release:{rid}")
        if any(stage.is_production for stage in plan.stages):
            await workflow.execute_activity_method(
                GovernanceActivities.governance_status, **policies.governance_options()
            )
        passed = True
        for stage in plan.stages:
            entity = f"release:{rid}/{stage.name}"
            audit("stage.started", "started", entity=entity)
            report = await workflow.execute_activity_method(
                SmokeActivities.run_smoke_checks,
                SmokeInput(
                    release_id=rid,
                    stage=stage.name,
                    base_url=stage.base_url,
                    checks=stage.smoke,
                    trace_id=input.trace_id,
                ),
                **policies.smoke_options(sum((c.timeout for c in stage.smoke), timedelta())),
            )
            passed = passed and report.passed
            audit(
                "smoke.result",
                "passed" if report.passed else "failed",
                entity=entity,
                details={"summary": report.summary()},
            )
            audit("stage.promoted", "promoted", entity=entity)
        audit("release.finished", "promoted", entity=f"release:{rid}")
        await journal.flush()
        return passed


def staged_plan(base_url: str, version: str) -> ReleasePlan:
    return parse_plan(
        {
            "service": "overhead",
            "version": version,
            "owner": "alice",
            "stages": [
                {
                    "name": name,
                    "base_url": base_url,
                    "smoke": [{"name": "health", "path": "/healthz"}],
                }
                for name in STAGES
            ],
        }
    )


class Runner:
    def __init__(self, client: Any, task_queue: str, base_url: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.base_url = base_url
        self.last: dict[str, Any] = {}

    def _input(self) -> ReleaseInput:
        plan = staged_plan(self.base_url, f"1.0.{uuid.uuid4().hex[:10]}")
        return ReleaseInput(plan=plan, started_by="alice", trace_id=uuid.uuid4().hex)

    async def release(self) -> float:
        input = self._input()
        started = time.perf_counter()
        handle = await self.client.start_workflow(
            ReleaseWorkflow.run, input, id=input.plan.release_id, task_queue=self.task_queue
        )
        result = await handle.result()
        elapsed = time.perf_counter() - started
        if result.outcome != ReleaseState.PROMOTED:
            raise RuntimeError(f"release ended {result.outcome.value}: {result.reason}")
        self.last["release"] = handle
        return elapsed

    async def bare(self) -> float:
        input = self._input()
        started = time.perf_counter()
        handle = await self.client.start_workflow(
            BareStagedWorkflow.run,
            input,
            id=f"bare-{input.plan.version}",
            task_queue=self.task_queue,
        )
        passed = await handle.result()
        elapsed = time.perf_counter() - started
        if not passed:
            raise RuntimeError("bare workflow's smoke checks failed")
        self.last["bare"] = handle
        return elapsed

    async def batch(self, kind: str, size: int) -> tuple[list[float], float]:
        started = time.perf_counter()
        one = self.release if kind == "release" else self.bare
        times = await asyncio.gather(*(one() for _ in range(size)))
        return list(times), time.perf_counter() - started


async def run(
    quick: bool = False,
    runs: int | None = None,
    batch: int | None = None,
    rounds: int | None = None,
    options: dict[str, Any] | None = None,
) -> BenchResult:
    """`options`: Worker keyword arguments to change (JSON-able, as bench.scale takes them)."""
    from bench.scale import worker_overrides

    runs = runs or (10 if quick else 30)
    batch = batch or (10 if quick else 20)
    rounds = rounds or (1 if quick else 3)
    options = options or {}
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="warden-bench-overhead-") as tmp,
        LoopbackService() as service,
    ):
        async with DevServer() as server, AsyncExitStack() as stack:
            client = await server.client()
            task_queue = f"bench-overhead-{uuid.uuid4().hex[:8]}"
            settings = bench_settings(Path(tmp), task_queue, server.address)
            worker = release_worker(
                client,
                settings,
                task_queue=task_queue,
                extra_workflows=[BareStagedWorkflow],
                stack=stack,
                **worker_overrides(options),
            )
            await stack.enter_async_context(worker)
            runner = Runner(client, task_queue, service.url)
            for _ in range(3):  # warm-up: imports, sandbox, SQLite, connections
                await runner.release()
                await runner.bare()
            seq: dict[str, list[float]] = {"release": [], "bare": []}
            cpu: dict[str, list[float]] = {"release": [], "bare": []}
            for i in range(runs):
                order = ("release", "bare") if i % 2 == 0 else ("bare", "release")
                for kind in order:
                    cpu_before = time.process_time()
                    seq[kind].append(
                        await (runner.release() if kind == "release" else runner.bare())
                    )
                    cpu[kind].append(time.process_time() - cpu_before)
            batches: dict[str, tuple[list[float], float]] = {
                "release": ([], 0.0),
                "bare": ([], 0.0),
            }
            for i in range(rounds):
                order = ("release", "bare") if i % 2 == 0 else ("bare", "release")
                for kind in order:
                    times, total = await runner.batch(kind, batch)
                    batches[kind] = (batches[kind][0] + times, batches[kind][1] + total / rounds)
            counts = {kind: await history_counts(runner.last[kind]) for kind in ("release", "bare")}

    result = BenchResult(
        name="overhead",
        title="Overhead: four-stage release vs. bare workflow with the same activity calls",
        measures=(
            "Wall time from `start_workflow` to the result at the client, for a four-stage release "
            "with one loopback smoke check per stage (no flags, no sign-off) and for "
            "`BareStagedWorkflow`, which makes the same 5 activity calls and writes the same 14 audit "
            "events through the same audit journal, with the same options, and nothing else. One worker, one dev server, runs "
            f"interleaved; {runs} sequential runs of each, then {rounds} round(s) of {batch} of each started "
            "at once (all-done time averaged over the rounds)."
            + (f" Worker options changed: {json.dumps(options)}." if options else "")
        ),
        headers=[
            "workload",
            "release p50",
            "bare p50",
            "ratio p50",
            "release mean",
            "bare mean",
            "ratio mean",
        ],
    )
    rel, bare = seq["release"], seq["bare"]
    p50_ratio = ratio(percentile(rel, 0.5), percentile(bare, 0.5))
    result.rows.append(
        [
            f"sequential ×{runs}",
            ms(percentile(rel, 0.5)),
            ms(percentile(bare, 0.5)),
            f"{p50_ratio:.2f}",
            ms(statistics.fmean(rel)),
            ms(statistics.fmean(bare)),
            f"{ratio(statistics.fmean(rel), statistics.fmean(bare)):.2f}",
        ]
    )
    (brel, brel_total), (bbare, bbare_total) = batches["release"], batches["bare"]
    batch_ratio = ratio(percentile(brel, 0.5), percentile(bbare, 0.5))
    result.rows.append(
        [
            f"{batch} at once ×{rounds}",
            ms(percentile(brel, 0.5)),
            ms(percentile(bbare, 0.5)),
            f"{batch_ratio:.2f}",
            ms(statistics.fmean(brel)),
            ms(statistics.fmean(bbare)),
            f"{ratio(statistics.fmean(brel), statistics.fmean(bbare)):.2f}",
        ]
    )
    result.rows.append(
        [
            f"{batch} at once, all done",
            ms(brel_total),
            ms(bbare_total),
            f"{ratio(brel_total, bbare_total):.2f}",
            "",
            "",
            "",
        ]
    )
    result.verdicts.append(
        Verdict(
            "release/bare, sequential p50", f"{p50_ratio:.2f}", f"≤ {TARGET}", p50_ratio <= TARGET
        )
    )
    result.verdicts.append(
        Verdict(
            f"release/bare, {batch} at once p50",
            f"{batch_ratio:.2f}",
            f"≤ {TARGET}",
            batch_ratio <= TARGET,
        )
    )
    kinds = sorted(
        {k for c in counts.values() for k in c if k.startswith(("activity:", "marker:"))}
    )
    calls = ", ".join(
        f"{k} {counts['release'].get(k, 0)}/{counts['bare'].get(k, 0)}" for k in kinds
    )
    result.notes += [
        f"Calls per run (release/bare): {calls}.",
        f"History events per run: release {counts['release']['events']}, bare {counts['bare']['events']} "
        f"(the release adds memo upserts and its bookkeeping).",
        f"CPU of the benchmark process (worker + client + loopback service) per sequential run: "
        f"release {ms(statistics.fmean(cpu['release']))}, bare {ms(statistics.fmean(cpu['bare']))}.",
    ]
    result.raw = {
        "sequential": seq,
        "batch": {k: v[0] for k, v in batches.items()},
        "batch_total_s": {k: v[1] for k, v in batches.items()},
        "options": options,
        "counts": counts,
    }
    result.seconds = time.monotonic() - began
    return result


def cli() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--runs", type=int, default=None, help="sequential runs of each (default 30)"
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="runs of each started at once (default 20)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds of batches (default 3)")
    parser.add_argument("--options", default="{}", help="JSON worker options to change")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(
        run(
            quick=args.quick,
            runs=args.runs,
            batch=args.batch,
            rounds=args.rounds,
            options=json.loads(args.options),
        )
    )
    print(result.text())


if __name__ == "__main__":
    cli()

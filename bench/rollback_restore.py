"""Rollback restore: a breach decided → every flag restored and verified, on the flagd-file backend.

Each run is a real release: four flags (the seeds' `ai.solutions`, `chat.channel.feishu`,
`customer.profile.refresh`, `requirements.priorityCreation`) set to 100% in dev, then ramped
5→25% in pilot, where the release parks at a sign-off (carol, dave; quorum 2). Carol rejects
it. The clock stops at the release's `rollback.completed` (the rollback record's finish time:
every flag in both environments written back from the snapshot and read back equal) and
starts at the rejection as the workflow recorded it (its decision time; both on the workflow
clock). Shown beside it: from the `reject` update returning at the client, and until the
release's result reaches the client. After every run the flag files are compared byte for
byte with their state before the release. Target: p95 ≤ 1 s.

    .venv/bin/python -m bench.rollback_restore [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
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
    ms,
    percentile,
    release_worker,
    stop_on_sigterm,
)

TARGET_S = 1.0
FLAGS = {
    "ai.solutions": 0,
    "chat.channel.feishu": 100,
    "customer.profile.refresh": 30,
    "requirements.priorityCreation": 0,
}
ENVIRONMENTS = ("dev", "pilot")


def ramp_plan(base_url: str, version: str) -> dict[str, Any]:
    smoke = [{"name": "health", "path": "/healthz"}]
    return {
        "service": "rollback",
        "version": version,
        "owner": "alice",
        "flags": list(FLAGS),
        "rollback": {"scope": "release"},
        "stages": [
            {
                "name": "dev",
                "base_url": base_url,
                "smoke": smoke,
                "flags": [{"flag": f} for f in FLAGS],
            },
            {
                "name": "pilot",
                "base_url": base_url,
                "smoke": smoke,
                "flags": [{"flag": f, "steps": [5, 25]} for f in FLAGS],
                "signoff": {"approvers": ["carol", "dave"], "quorum": 2, "deadline": "4h"},
            },
        ],
    }


async def one_run(
    client: Any, task_queue: str, base_url: str, settings: Any, before: dict[str, bytes]
) -> dict[str, Any]:
    from warden.flagstore.flagd_file import flag_file
    from warden.models.plan import parse_plan
    from warden.models.release import DecisionRequest, ReleaseInput, ReleaseState
    from workflows.release import ReleaseWorkflow

    plan = parse_plan(ramp_plan(base_url, f"1.0.{uuid.uuid4().hex[:8]}"))
    handle = await client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(plan=plan, started_by="alice", trace_id=uuid.uuid4().hex),
        id=plan.release_id,
        task_queue=task_queue,
    )
    while (await handle.query(ReleaseWorkflow.status)).state.value != "waiting_approval":
        await asyncio.sleep(0.05)
    await handle.execute_update(
        ReleaseWorkflow.reject,
        DecisionRequest(stage="pilot", user="carol", comment="error budget spent"),
    )
    decided = time.time()
    result = await handle.result()
    result_at = time.time()
    if (
        result.outcome != ReleaseState.ROLLED_BACK
        or result.rollback is None
        or result.rollback.finished_at is None
    ):
        raise RuntimeError(f"release ended {result.outcome.value}: {result.reason}")
    rollback = result.rollback
    status = await handle.query(ReleaseWorkflow.status)
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert pilot.signoff is not None and pilot.signoff.decisions
    recorded = pilot.signoff.decisions[0].at  # the rejection as the workflow recorded it
    restored = {
        env: flag_file(settings.flags_path, env).read_bytes() == before[env] for env in ENVIRONMENTS
    }
    return {
        "to_completed_s": rollback.finished_at.timestamp() - decided,
        "recorded_to_completed_s": (rollback.finished_at - recorded).total_seconds(),
        "to_result_s": result_at - decided,
        "in_workflow_s": (rollback.finished_at - rollback.started_at).total_seconds(),
        "flags_restored": len(rollback.report.restored) if rollback.report else 0,
        "identical": all(restored.values()),
    }


async def run(quick: bool = False, runs: int | None = None) -> BenchResult:
    from warden.flagstore.flagd_file import flag_file, init_flag_file

    runs = runs or (5 if quick else 20)
    began = time.monotonic()
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="warden-bench-rollback-") as tmp,
        LoopbackService() as service,
    ):
        async with DevServer() as server, AsyncExitStack() as stack:
            client = await server.client()
            task_queue = f"bench-rollback-{uuid.uuid4().hex[:8]}"
            settings = bench_settings(
                Path(tmp), task_queue, server.address, flag_backend="flagd-file"
            )
            for env in ENVIRONMENTS:
                init_flag_file(flag_file(settings.flags_path, env), FLAGS)
            before = {env: flag_file(settings.flags_path, env).read_bytes() for env in ENVIRONMENTS}
            await stack.enter_async_context(
                release_worker(client, settings, task_queue=task_queue, stack=stack)
            )
            await one_run(client, task_queue, service.url, settings, before)  # warm-up
            for _ in range(runs):
                results.append(await one_run(client, task_queue, service.url, settings, before))

    completed = [r["to_completed_s"] for r in results]
    recorded = [r["recorded_to_completed_s"] for r in results]
    to_result = [r["to_result_s"] for r in results]
    inside = [r["in_workflow_s"] for r in results]
    p95 = percentile(recorded, 0.95)
    identical = sum(r["identical"] for r in results)
    result = BenchResult(
        name="rollback_restore",
        title="Rollback restore: rejection → flags restored and verified (flagd-file)",
        measures=(
            f"{runs} releases, each ramping 4 flags in dev (100%) and pilot (5→25%), rejected at the pilot "
            "sign-off. Until the release's rollback completed (all 8 flag states written back from the "
            "snapshot and read back equal): from the rejection as the workflow recorded it (both ends on the "
            "workflow clock; the target applies to this one), and from the `reject` update returning at the "
            "client (the update's answer travels back while the rollback has already begun); and until the "
            "release's result reached the client."
        ),
        headers=["measure", "p50", "p95", "max"],
        rows=[
            [
                "rejection recorded → rollback.completed (workflow clock)",
                ms(percentile(recorded, 0.5)),
                ms(p95),
                ms(max(recorded)),
            ],
            [
                "reject update returns → rollback.completed",
                ms(percentile(completed, 0.5)),
                ms(percentile(completed, 0.95)),
                ms(max(completed)),
            ],
            [
                "reject → result at the client",
                ms(percentile(to_result, 0.5)),
                ms(percentile(to_result, 0.95)),
                ms(max(to_result)),
            ],
            [
                "rollback.started → completed (in the workflow)",
                ms(percentile(inside, 0.5)),
                ms(percentile(inside, 0.95)),
                ms(max(inside)),
            ],
        ],
    )
    result.verdicts.append(
        Verdict(
            "rejection → rollback.completed, p95",
            ms(p95),
            f"≤ {TARGET_S * 1000:.0f} ms",
            p95 <= TARGET_S,
        )
    )
    result.notes.append(
        f"Flag files byte-identical to their state before the release after {identical} of {runs} runs "
        f"({results[0]['flags_restored'] if results else 0} flag states restored per run)."
    )
    result.raw = {"runs": results}
    result.seconds = time.monotonic() - began
    return result


def cli() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None, help="releases rejected (default 20)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(asyncio.run(run(quick=args.quick, runs=args.runs)).text())


if __name__ == "__main__":
    cli()

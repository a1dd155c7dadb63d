"""Replay: `warden replay RELEASE_ID` of a release with about 400 history events.

A real release on a dev server and the shipped worker (the plan of `bench.reports`: a pilot
stage ramping one flag in many small steps, a guard watching one-second bakes, a sign-off),
approved and finished; then `warden replay RELEASE_ID` runs as its own process, as a person
or CI runs it, timed from spawning the command to the last line printed (its exit), for the
table and for `--json`. The history is replayed against the current workflow code and merged
with the release's audit rows. Target: ≤ 2 s.

    .venv/bin/python -m bench.replay [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
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
    stop_on_sigterm,
)
from bench.reports import _plan

TARGET_S = 2.0
WARDEN = str(Path(sys.executable).parent / "warden")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])} exited {done.returncode}: {done.stderr}")
    return elapsed, done.stdout


async def run(quick: bool = False) -> BenchResult:
    from warden.flagstore.flagd_file import flag_file, init_flag_file
    from warden.models.plan import parse_plan
    from warden.models.release import DecisionRequest, ReleaseInput, ReleaseState
    from workflows.release import ReleaseWorkflow

    runs = 3 if quick else 10
    steps = 25
    began = time.monotonic()
    metrics = json.dumps({"error_rate": 0.01}).encode()
    with (
        tempfile.TemporaryDirectory(prefix="warden-bench-replay-") as tmp,
        LoopbackService({"/metrics.json": lambda: (200, "application/json", metrics)}) as service,
    ):
        async with DevServer() as server, AsyncExitStack() as stack:
            client = await server.client()
            task_queue = f"bench-replay-{uuid.uuid4().hex[:8]}"
            settings = bench_settings(Path(tmp), task_queue, server.address)
            init_flag_file(flag_file(settings.flags_path, "pilot"), {"ai.solutions": 0})
            async with release_worker(client, settings, task_queue=task_queue, stack=stack):
                plan = parse_plan(_plan(service.url, f"1.0.{uuid.uuid4().hex[:6]}", steps))
                handle = await client.start_workflow(
                    ReleaseWorkflow.run,
                    ReleaseInput(plan=plan, started_by="alice", trace_id=uuid.uuid4().hex),
                    id=plan.release_id,
                    task_queue=task_queue,
                )
                while True:
                    status = await handle.query(ReleaseWorkflow.status)
                    if status.state == ReleaseState.WAITING_APPROVAL or status.state.ended:
                        break
                    await asyncio.sleep(0.2)
                await handle.execute_update(
                    ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol")
                )
                await handle.result()
            counts = await history_counts(handle)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "OTEL_"))}
            env.update(
                {
                    "WARDEN_STATE_DIR": str(settings.state_dir),
                    "WARDEN_TEMPORAL_ADDRESS": server.address,
                    "WARDEN_TASK_QUEUE": task_queue,
                    "WARDEN_AUTOSTART_WORKER": "false",
                    "WARDEN_USER": "alice",
                }
            )
            command = [WARDEN, "replay", plan.release_id]
            timings: dict[str, list[float]] = {"table": [], "json": []}
            lines = chain = 0
            timed(command, env)  # warm-up: bytecode, page cache
            for _ in range(runs):
                elapsed, out = timed(command, env)
                timings["table"].append(elapsed)
                lines = len(out.splitlines())
                elapsed, out = timed([*command, "--json"], env)
                timings["json"].append(elapsed)
                chain = len(json.loads(out)["chain"])

    p50 = {k: percentile(v, 0.5) for k, v in timings.items()}
    worst = max(p50.values())
    result = BenchResult(
        name="replay",
        title="Replay: `warden replay` of a release with about 400 history events",
        measures=(
            f"`warden replay RELEASE_ID` as its own process against a dev server, for a finished "
            f"release of {counts['events']} history events (a pilot stage ramping a flag in "
            f"{steps} steps with a guard, a sign-off), from spawning the command to its last line "
            f"printed; {runs} runs of each output after one warm-up. Each run connects, fetches "
            "the history, replays it against the current workflow code, reads the release's "
            "audit rows and prints the merged chain."
        ),
        headers=["output", "p50", "mean", "max", "lines"],
    )
    for kind, count in (("table", lines - 1), ("json", chain)):
        result.rows.append(
            [
                "table" if kind == "table" else "--json",
                secs(p50[kind]),
                secs(statistics.fmean(timings[kind])),
                secs(max(timings[kind])),
                f"{count} chain lines",
            ]
        )
    result.verdicts.append(
        Verdict(
            f"replay of {counts['events']} events, p50 (slower output)",
            secs(worst),
            f"≤ {TARGET_S:.0f} s",
            worst <= TARGET_S,
        )
    )
    result.raw = {"timings": timings, "events": counts["events"]}
    result.seconds = time.monotonic() - began
    return result


def cli() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(asyncio.run(run(quick=args.quick)).text())


if __name__ == "__main__":
    cli()

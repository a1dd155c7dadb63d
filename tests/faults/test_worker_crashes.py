"""Workers killed with SIGKILL at random points while six releases run: every release still ends
as it would have without a crash, its flag files end exactly as they must, and its audit trail
holds every event exactly once.

Real components throughout: the Temporal dev server, `python worker.py` processes (a new one
after each kill), the flagd-file backend and the SQLite audit store in the worker's state dir,
and a loopback service the smoke checks and guards probe. The kill times come from a seeded
random (FAULT_SEED, default 7), so a failing run can be repeated exactly.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.faults.support import (
    Service,
    WorkerProcess,
    actions,
    audit_rows,
    decide,
    error_rate_guard,
    flag_path,
    flag_steps,
    logical_duplicates,
    promoted_file,
    query_status,
    release_plan,
    result_of,
    signoff,
    start_release,
    wait_memo,
    write_flag_files,
)
from tests.helpers import RecordingServer
from warden.models.plan import ReleasePlan
from warden.models.release import ReleaseResult, ReleaseState
from warden.settings import Settings

SEED = int(os.environ.get("FAULT_SEED", "7"))
MAX_KILLS = 6

PROMOTED, ROLLED_BACK = ReleaseState.PROMOTED, ReleaseState.ROLLED_BACK


@dataclass
class Scenario:
    """One release, and how it ends when nothing crashes."""

    key: str
    stages: list[dict[str, Any]]
    outcome: ReleaseState
    reason: str
    #: (stage, percent) of every flag step the release applies before it ends.
    steps: list[tuple[str, int]]
    decisions: list[tuple[str, bool]] = field(default_factory=list)
    #: The stage that fails (and is rolled back), for releases that are not promoted.
    fails_at: str | None = None
    unhealthy: list[str] = field(default_factory=list)
    breaks: tuple[str, int] | None = None

    @property
    def flag(self) -> str:
        return f"desk.{self.key}"


def ramp(flag: str, steps: list[int], bake: str = "1s") -> list[dict[str, Any]]:
    return [{"flag": flag, "steps": steps, "bake": bake}]


def scenarios() -> list[Scenario]:
    def f(key: str) -> str:
        return f"desk.{key}"

    guard = [error_rate_guard()]
    return [
        Scenario(
            "r1",
            [
                {"name": "dev", "flags": ramp(f("r1"), [100], "0s")},
                {"name": "pilot", "flags": ramp(f("r1"), [25, 50, 100]), "checks": guard},
            ],
            PROMOTED,
            "promoted through every stage",
            [("dev", 100), ("pilot", 25), ("pilot", 50), ("pilot", 100)],
        ),
        Scenario(
            "r2",
            [
                {"name": "dev", "flags": ramp(f("r2"), [100], "0s")},
                {"name": "pilot", "flags": ramp(f("r2"), [25, 50, 100]), "signoff": signoff()},
            ],
            PROMOTED,
            "promoted through every stage",
            [("dev", 100), ("pilot", 25), ("pilot", 50), ("pilot", 100)],
            decisions=[("carol", True), ("dave", True)],
        ),
        Scenario(
            "r3",
            [
                {"name": "dev", "flags": ramp(f("r3"), [50, 100])},
                {"name": "pilot", "flags": ramp(f("r3"), [25, 100])},
            ],
            ROLLED_BACK,
            "smoke checks failed in pilot",
            [("dev", 50), ("dev", 100)],
            fails_at="pilot",
            unhealthy=["pilot"],
        ),
        Scenario(
            "r4",
            [
                {"name": "dev", "flags": ramp(f("r4"), [100], "0s")},
                {"name": "pilot", "flags": ramp(f("r4"), [25, 50, 100]), "checks": guard},
            ],
            ROLLED_BACK,
            "guard error-rate tripped",
            [("dev", 100), ("pilot", 25), ("pilot", 50)],
            fails_at="pilot",
            breaks=("pilot", 50),
        ),
        Scenario(
            "r5",
            [
                {"name": "dev", "flags": ramp(f("r5"), [100], "0s")},
                {
                    "name": "pilot",
                    "flags": ramp(f("r5"), [25, 50]),
                    "checks": guard,
                    "signoff": signoff(),
                },
            ],
            ROLLED_BACK,
            "rejected at pilot by erin",
            [("dev", 100), ("pilot", 25), ("pilot", 50)],
            decisions=[("erin", False)],
            fails_at="pilot",
        ),
        Scenario(
            "r6",
            [
                {"name": "dev", "flags": ramp(f("r6"), [50, 100])},
                {
                    "name": "staging",
                    "flags": ramp(f("r6"), [100], "0s"),
                    "checks": guard,
                    "bake": "2s",
                },
                {"name": "pilot", "flags": ramp(f("r6"), [25, 50, 100]), "checks": guard},
            ],
            PROMOTED,
            "promoted through every stage",
            [
                ("dev", 50),
                ("dev", 100),
                ("staging", 100),
                ("pilot", 25),
                ("pilot", 50),
                ("pilot", 100),
            ],
        ),
    ]


async def sign_off(handle: WorkflowHandle[Any, Any], decisions: list[tuple[str, bool]]) -> None:
    """The committee acts once the release waits for it, whether or not a worker is up."""
    if not decisions:
        return
    await wait_memo(handle, "waiting_approval", "pilot", timeout=240)
    for user, approve in decisions:
        await decide(
            handle, "pilot", user, approve=approve, comment="" if approve else "not this week"
        )


async def test_releases_survive_worker_kills_at_random_points(
    dev_env: WorkflowEnvironment,
    workers: Any,
    service: tuple[Service, RecordingServer],
) -> None:
    desk, server = service
    rng = random.Random(SEED)
    worker: WorkerProcess = workers(dev_env.client.service_client.config.target_host)
    settings = worker.settings

    cases = scenarios()
    plans: dict[str, ReleasePlan] = {}
    before: dict[str, dict[str, bytes]] = {}
    for case in cases:
        plan = release_plan(server.url, case.key, case.stages)
        plans[case.key] = plan
        before[case.key] = write_flag_files(settings, plan)
        for stage in case.unhealthy:
            desk.unhealthy.add(f"{case.key}/{stage}")
        if case.breaks:
            stage, percent = case.breaks
            env = next(s.env for s in plan.stages if s.name == stage)
            desk.breaks[f"{case.key}/{stage}"] = (flag_path(settings, env), case.flag, percent)

    worker.start()
    await worker.ready()

    handles: dict[str, WorkflowHandle[Any, ReleaseResult]] = {}
    results: dict[str, asyncio.Task[ReleaseResult]] = {}
    committees: list[asyncio.Task[None]] = []

    async def launch(case: Scenario, delay: float) -> None:
        await asyncio.sleep(delay)
        handle = await start_release(dev_env.client, plans[case.key], worker.task_queue)
        handles[case.key] = handle
        results[case.key] = asyncio.ensure_future(result_of(handle, timeout=240))
        committees.append(asyncio.ensure_future(sign_off(handle, case.decisions)))

    def all_ended() -> bool:
        return launches.done() and all(task.done() for task in results.values())

    # Staggered starts, so the kills find the releases at different points.
    launches = asyncio.ensure_future(
        asyncio.gather(*(launch(case, rng.uniform(0, 4)) for case in cases))
    )
    kill_points: list[list[str]] = []
    try:
        while worker.kills < MAX_KILLS and not all_ended():
            await worker.ready()
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            running = [key for key, task in results.items() if not task.done()]
            if not running:
                continue
            statuses = await asyncio.gather(*(query_status(handles[key], 2) for key in running))
            worker.kill()
            kill_points.append(
                [
                    f"{key}: {s.current_step if s else '(no answer: waiting out a lost worker)'}"
                    for key, s in zip(running, statuses, strict=True)
                ]
            )
            worker.start()
        await worker.ready()
        await launches
        finished = dict(zip(results, await asyncio.gather(*results.values()), strict=True))
        await asyncio.gather(*committees)
    finally:
        launches.cancel()
        for task in [*results.values(), *committees]:
            task.cancel()

    problems = {
        case.key: check_release(
            case, plans[case.key], finished[case.key], before[case.key], settings
        )
        for case in cases
    }
    correct = sum(not found for found in problems.values())
    print(
        f"\nworker crashes (seed {SEED}): {len(cases)} releases, {worker.kills} SIGKILLs, "
        f"{worker.started} worker processes, {correct}/{len(cases)} releases ended as without crashes"
    )
    for number, points in enumerate(kill_points, 1):
        print(f"  kill {number}: " + "; ".join(points))
    assert worker.kills >= 3, "the releases ended before the worker could be killed a few times"
    assert correct == len(cases), "\n".join(
        f"{plans[key].release_id}: {problem}"
        for key, found in problems.items()
        for problem in found
    )


def check_release(
    case: Scenario,
    plan: ReleasePlan,
    result: ReleaseResult,
    before: dict[str, bytes],
    settings: Settings,
) -> list[str]:
    """Everything that must hold for one release after the crashes; empty when all of it does."""
    problems: list[str] = []
    if result.outcome != case.outcome or case.reason not in result.reason:
        problems.append(
            f"ended {result.outcome.value} ({result.reason}), expected {case.outcome.value}"
        )
    names = [s.name for s in plan.stages]
    promoted_stages = names[: names.index(case.fails_at)] if case.fails_at else names
    if (result.failed_stage, result.promoted_stages) != (case.fails_at, promoted_stages):
        problems.append(
            f"failed at {result.failed_stage} after promoting {result.promoted_stages}, "
            f"expected {case.fails_at} after {promoted_stages}"
        )
    if result.outcome == ROLLED_BACK and not (
        result.rollback and result.rollback.state == "completed"
    ):
        problems.append("rolled back without a completed, verified restore")
    # Flag files: promoted → at the last step of each stage; rolled back → byte for byte as before.
    for stage in plan.stages:
        path = flag_path(settings, stage.env)
        if case.outcome == PROMOTED:
            final = max(p for s, p in case.steps if s == stage.name)
            expected = promoted_file(before[stage.env], {case.flag: final})
        else:
            expected = before[stage.env]
        if path.read_bytes() != expected:
            problems.append(f"flag file {path.name} is not as expected:\n{path.read_text()}")
    # Audit: every event exactly once.
    rows = audit_rows(settings, plan.release_id)
    counts = actions(rows)
    envs = {s.name: s.env for s in plan.stages}
    wanted = Counter((f"{case.flag}@{envs[stage]}", percent) for stage, percent in case.steps)
    if flag_steps(rows) != wanted:
        problems.append(f"flag.changed rows {dict(flag_steps(rows))}, expected {dict(wanted)}")
    finished = [r.result for r in rows if r.action == "release.finished"]
    if counts["release.started"] != 1 or finished != [case.outcome.value]:
        problems.append(
            f"release.started x{counts['release.started']}, release.finished {finished}"
        )
    promoted = Counter(r.entity for r in rows if r.action == "stage.promoted")
    if promoted != Counter(f"release:{plan.release_id}/{s}" for s in result.promoted_stages):
        problems.append(f"stage.promoted rows {dict(promoted)}")
    rollbacks = 1 if case.outcome == ROLLED_BACK else 0
    if (counts["rollback.started"], counts["rollback.completed"]) != (rollbacks, rollbacks):
        problems.append(
            f"rollback rows {counts['rollback.started']}/{counts['rollback.completed']}"
        )
    if logical_duplicates(rows):
        problems.append(f"duplicate audit rows: {logical_duplicates(rows)}")
    return problems

"""Guards inside the release workflow, on Temporal's time-skipping test server.

The worker runs the real activities except `run_checks`, which is a MetricActivities with
a scripted provider and a ManualClock: workflow time skips, and the guard's own clock
moves as fast as it measures, so a seven-day bake takes seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest_asyncio
from temporalio.client import Client

from activities.metrics import ManualClock, MetricActivities
from tests.metrics.support import ScriptedProvider
from warden.flagstore.flagd_file import flag_file, init_flag_file
from warden.models.plan import ReleasePlan, parse_plan
from warden.models.release import ReleaseInput, ReleaseResult, ReleaseState, ReleaseStatus
from warden.runtime.worker import build_worker
from warden.settings import Settings
from workflows.release import ReleaseWorkflow

OK, BAD = 0.01, 0.5


class GuardedWorker:
    def __init__(self, client: Client, settings: Settings, task_queue: str) -> None:
        self.client = client
        self.settings = settings
        self.task_queue = task_queue
        self.provider = ScriptedProvider({})
        self.metrics = MetricActivities({"prometheus": self.provider}, clock=ManualClock())

    async def release(self, plan: ReleasePlan) -> tuple[ReleaseResult, ReleaseStatus, int]:
        """Run `plan` to its end; the result, the final status and the history's event count."""
        async with AsyncExitStack() as stack:
            async with build_worker(
                self.client,
                self.settings,
                task_queue=self.task_queue,
                overrides=[self.metrics.run_checks],
                stack=stack,
            ):
                handle = await self.client.start_workflow(
                    ReleaseWorkflow.run,
                    ReleaseInput(plan=plan, started_by="alice", trace_id="trace-guard"),
                    id=plan.release_id,
                    task_queue=self.task_queue,
                )
                result = await handle.result()
                status = await handle.query(ReleaseWorkflow.status)
                history = await handle.fetch_history()
        return result, status, len(history.events)


@pytest_asyncio.fixture
async def guarded(
    client: Client, settings: Settings, task_queue: str
) -> AsyncIterator[GuardedWorker]:
    yield GuardedWorker(client, settings, task_queue)


def plan(**stage: Any) -> ReleasePlan:
    data: dict[str, Any] = {
        "service": "support-desk",
        "version": f"2.0.{uuid.uuid4().hex[:8]}",
        "owner": "alice",
        "stages": [{"name": "pilot", "base_url": "http://127.0.0.1:9", **stage}],
    }
    if stage.get("flags"):
        data["flags"] = [f["flag"] for f in stage["flags"]]
    return parse_plan(data)


def error_rate(**fields: Any) -> dict[str, Any]:
    return {
        "name": "external-api-error-rate",
        "query": {
            "provider": "prometheus",
            "query": "sum(rate(errors[1m])) / sum(rate(requests[1m]))",
        },
        "max": 0.05,
        "interval": "10s",
        **fields,
    }


def channel_down() -> dict[str, Any]:
    """A notify-only guard: the channel down for 30 s raises an alert, up again clears it."""
    return {
        "name": "im-channel-down",
        "query": {"provider": "prometheus", "query": "min(im_channel_up)"},
        "min": 1,
        "for": "30s",
        "interval": "10s",
        "action": "notify",
        "notify": ["operations"],
        "phases": ["guard"],
    }


async def test_a_seven_day_bake_completes_within_a_small_history(guarded: GuardedWorker) -> None:
    guarded.provider.scripts["external-api-error-rate"] = [OK]
    result, status, events = await guarded.release(plan(checks=[error_rate()], bake="7d"))
    assert result.outcome == ReleaseState.PROMOTED, result.reason
    assert events < 5_000
    # It really watched the whole week: one measurement every 10s, plus the pre-promotion one.
    assert len(guarded.provider.calls["external-api-error-rate"]) == 7 * 86_400 // 10 + 1
    assert status.stages[0].guards[-1].outcome.value == "passed"


async def test_a_guard_breach_during_a_flag_step_rolls_back_and_restores_the_flag(
    guarded: GuardedWorker, settings: Settings
) -> None:
    path = flag_file(settings.flags_path, "pilot")
    init_flag_file(path, {"ai.solutions": 0})
    before = path.read_bytes()
    guarded.provider.scripts["external-api-error-rate"] = [OK, OK, OK, BAD]
    result, status, _ = await guarded.release(
        plan(
            checks=[error_rate(phases=["guard"])],
            flags=[{"flag": "ai.solutions", "steps": [50, 100], "bake": "1m"}],
        )
    )
    assert result.outcome == ReleaseState.ROLLED_BACK, result.reason
    assert "external-api-error-rate" in result.reason
    assert path.read_bytes() == before  # the flag is exactly where it was
    steps = status.stages[0].flag_steps
    assert [(s.percent, s.state) for s in steps] == [(50, "tripped")]  # 100% was never applied
    assert result.rollback is not None and result.rollback.state == "completed"


async def test_a_notify_guard_raises_and_clears_an_active_alert(guarded: GuardedWorker) -> None:
    guarded.provider.scripts["im-channel-down"] = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    result, status, _ = await guarded.release(plan(checks=[channel_down()], bake="10m"))
    assert result.outcome == ReleaseState.PROMOTED, result.reason
    assert [(a.check, a.active) for a in status.alerts] == [("im-channel-down", False)]
    actions = [e.action for e in status.timeline]
    assert actions.count("alert.raised") == 1 and actions.count("alert.cleared") == 1
    assert status.stages[0].guards[-1].outcome.value == "passed"


class WorkerLost(BaseException):
    """The worker process went away in the middle of a guard (not an error a provider reports)."""


async def test_a_guard_retried_after_a_lost_worker_resumes_its_counts(
    guarded: GuardedWorker,
) -> None:
    def lose_worker(ctx: Any) -> float:
        raise WorkerLost()

    guarded.metrics = MetricActivities(
        {"prometheus": guarded.provider}, clock=ManualClock(), heartbeat_gap_s=0
    )
    # One failure is tolerated (failure_limit 1); the second, after the retry, must count.
    guarded.provider.scripts["external-api-error-rate"] = [OK, BAD, OK, lose_worker, OK, BAD, OK]
    result, status, _ = await guarded.release(
        plan(checks=[error_rate(failure_limit=1, phases=["guard"])], bake="10m")
    )
    assert result.outcome == ReleaseState.FAILED, result.reason
    assert "external-api-error-rate" in result.reason
    assert len(guarded.provider.calls["external-api-error-rate"]) == 6

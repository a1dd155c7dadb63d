"""Fixtures for workflow tests: a worker on the test's own task queue, release starters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.helpers import RecordingServer, plan_dict
from warden.flagstore.flagd_file import flag_file, init_flag_file
from warden.models.plan import ReleasePlan, parse_plan
from warden.models.release import ReleaseInput, ReleaseResult, ReleaseStatus
from warden.runtime.worker import build_worker
from warden.settings import Settings
from workflows.release import ReleaseWorkflow


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Workflow tests give every run its own sandbox (`isolated`): the sandbox then checks
    what the workflow modules call on every path these tests take (the shipped default
    shares the modules between runs, which skips that check)."""
    monkeypatch.setenv("WARDEN_WORKFLOW_SANDBOX", "isolated")
    return settings.model_copy(update={"workflow_sandbox": "isolated"})


@pytest.fixture
def target() -> Any:
    with RecordingServer() as server:
        yield server


@pytest_asyncio.fixture
async def worker(client: Client, settings: Settings, task_queue: str) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        async with build_worker(client, settings, task_queue=task_queue, stack=stack):
            yield


class Releases:
    """Start releases on the test's task queue and wait for the states a test cares about."""

    def __init__(
        self, env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
    ) -> None:
        self.env = env
        self.client = env.client
        self.settings = settings
        self.task_queue = task_queue
        self.base_url = base_url

    def plan(self, **overrides: Any) -> ReleasePlan:
        overrides.setdefault("version", f"1.0.{uuid.uuid4().hex[:8]}")
        return parse_plan(plan_dict(self.base_url, **overrides))

    async def start(
        self, plan: ReleasePlan, started_by: str = "alice"
    ) -> WorkflowHandle[ReleaseWorkflow, ReleaseResult]:
        return await self.client.start_workflow(
            ReleaseWorkflow.run,
            ReleaseInput(
                plan=plan, started_by=started_by, trace_id=f"trace-{uuid.uuid4().hex[:8]}"
            ),
            id=plan.release_id,
            task_queue=self.task_queue,
        )

    async def wait_for(
        self,
        handle: WorkflowHandle[Any, Any],
        predicate: Callable[[ReleaseStatus], bool],
        timeout: float = 30.0,
        skip: timedelta = timedelta(seconds=20),
    ) -> ReleaseStatus:
        """Poll the status query; on the time-skipping server, move workflow time on by `skip` per poll."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status: ReleaseStatus = await handle.query(ReleaseWorkflow.status)
            if predicate(status):
                return status
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"condition not reached; state {status.state}, step {status.current_step!r}"
                )
            if self.env.supports_time_skipping:
                await self.env.sleep(skip)
            else:
                await asyncio.sleep(0.05)

    def flag_path(self, env: str) -> Path:
        return flag_file(self.settings.flags_path, env)

    def init_flags(self, envs: list[str], flags: dict[str, int]) -> dict[str, bytes]:
        for env in envs:
            init_flag_file(self.flag_path(env), flags)
        return {env: self.flag_path(env).read_bytes() for env in envs}


@pytest.fixture
def releases(
    time_env: WorkflowEnvironment,
    settings: Settings,
    task_queue: str,
    target: RecordingServer,
    worker: None,
) -> Releases:
    return Releases(time_env, settings, task_queue, target.url)


def waiting_at(stage: str) -> Callable[[ReleaseStatus], bool]:
    def check(status: ReleaseStatus) -> bool:
        return status.current_stage == stage and status.state.value == "waiting_approval"

    return check

"""Fixtures of the report tests: the session's dev server, a worker on the test's task queue,
and the sample Support Desk serving the pilot stage from the flag file the worker writes."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from examples.support_desk.flags import default_flags
from examples.support_desk.launcher import SupportDeskProcess
from warden.flagstore.flagd_file import flag_file, init_flag_file
from warden.models.plan import ReleasePlan, parse_plan
from warden.models.release import ReleaseInput, ReleaseResult, ReleaseStatus
from warden.runtime.worker import build_worker
from warden.settings import Settings
from workflows.release import ReleaseWorkflow

WARDEN = str(Path(sys.executable).parent / "warden")


@pytest_asyncio.fixture
async def worker(dev_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[Client]:
    async with AsyncExitStack() as stack:
        async with build_worker(dev_env.client, settings, stack=stack):
            yield dev_env.client


@dataclass
class Desk:
    """The Support Desk of one environment, reading the flag file the worker writes."""

    process: SupportDeskProcess
    flags: Path

    @property
    def url(self) -> str:
        return self.process.url

    def channel(self, name: str, state: str) -> None:
        httpx.post(f"{self.url}/_sim/channels/{name}/{state}", timeout=5).raise_for_status()


@pytest.fixture
def desks(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Desk]]:
    """`desks(environment, build=...)`: a Support Desk with traffic, stopped by its PID after."""
    started: list[SupportDeskProcess] = []

    def start(environment: str, build: str = "good") -> Desk:
        path = flag_file(settings.flags_path, environment)
        init_flag_file(path, default_flags())
        process = SupportDeskProcess(
            flags_file=path,
            build=build,  # type: ignore[arg-type]
            simulate_rps=20,
            seed=7,
            log_file=tmp_path / f"desk-{environment}.log",
        ).start()
        started.append(process)
        return Desk(process, path)

    yield start
    for process in started:
        process.stop()


def cli_env(settings: Settings, client: Client) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(
        {
            "WARDEN_STATE_DIR": str(settings.state_dir),
            "WARDEN_TASK_QUEUE": settings.task_queue,
            "WARDEN_TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "WARDEN_AUTOSTART_WORKER": "false",
            "WARDEN_SEARCH_ATTRIBUTES": "false",
        }
    )
    return env


async def run_tool(*argv: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def release_plan(**data: Any) -> ReleasePlan:
    data.setdefault("service", "support-desk")
    data.setdefault("version", f"9.{uuid.uuid4().hex[:8]}")
    data.setdefault("owner", "alice")
    return parse_plan(data)


async def start(
    client: Client, settings: Settings, plan: ReleasePlan
) -> WorkflowHandle[ReleaseWorkflow, ReleaseResult]:
    return await client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(plan=plan, started_by="alice", trace_id=f"trace-{uuid.uuid4().hex[:8]}"),
        id=plan.release_id,
        task_queue=settings.task_queue,
    )


async def wait_status(
    handle: WorkflowHandle[Any, Any],
    predicate: Callable[[ReleaseStatus], bool],
    timeout: float = 180.0,
) -> ReleaseStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status: ReleaseStatus = await handle.query(ReleaseWorkflow.status)
        if predicate(status):
            return status
        if status.state.ended or loop.time() > deadline:
            raise AssertionError(
                f"{handle.id}: condition not reached ({status.state.value}: {status.current_step})"
            )
        await asyncio.sleep(0.2)

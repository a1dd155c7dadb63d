"""A real dev server with a worker in this process: running programs beside it, a parked release."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from tests.helpers import plan_dict
from warden.models.plan import parse_plan
from warden.models.release import ReleaseInput, ReleaseStatus
from warden.runtime.devserver import find_binary
from warden.settings import Settings
from workflows.release import ReleaseWorkflow

WARDEN = str(Path(sys.executable).parent / "warden")
TEMPORAL = str(find_binary("temporal"))
#: The parked release's sign-off: whoever is not one of these cannot approve it.
MEMBERS = ("carol", "dave", "erin")
STARTED_BY = "alice"


@dataclass
class Live:
    client: Client
    address: str
    settings: Settings
    workdir: Path

    def warden_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        env.update(
            {
                "WARDEN_STATE_DIR": str(self.settings.state_dir),
                "WARDEN_TASK_QUEUE": self.settings.task_queue,
                "WARDEN_TEMPORAL_ADDRESS": self.address,
                "WARDEN_AUTOSTART_WORKER": "false",
                "WARDEN_SEARCH_ATTRIBUTES": "false",
                "WARDEN_USER": "bob",
            }
        )
        if self.settings.governance_file:
            env["WARDEN_GOVERNANCE_FILE"] = str(self.settings.governance_file)
        return env


async def run_process(
    *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 90
) -> tuple[int, str, str]:
    """Run a program without blocking the event loop (the worker shares it)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{argv[:6]!r} did not finish within {timeout}s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def run_all(calls: list[Any], limit: int = 8) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


async def park_release(live: Live, base_url: str) -> WorkflowHandle[Any, Any]:
    """A release waiting for the pilot sign-off of two of carol, dave and erin."""
    plan = parse_plan(plan_dict(base_url, version=f"9.{uuid.uuid4().hex[:10]}"))
    handle = await live.client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(plan=plan, started_by=STARTED_BY, trace_id=f"fuzz-{uuid.uuid4().hex[:8]}"),
        id=plan.release_id,
        task_queue=live.settings.task_queue,
    )
    # Parked once the timeline says so: the sign-off notice goes out after the state changes.
    await wait_for(
        handle,
        lambda s: (
            s.state.value == "waiting_approval"
            and s.current_stage == "pilot"
            and any(e.action == "signoff.requested" for e in s.timeline)
        ),
    )
    return handle


async def wait_for(
    handle: WorkflowHandle[Any, Any], predicate: Any, timeout: float = 60
) -> ReleaseStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status: ReleaseStatus = await handle.query(
            ReleaseWorkflow.status, rpc_timeout=timedelta(seconds=min(10, timeout))
        )
        if predicate(status):
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"state {status.state.value}, step {status.current_step!r}")
        await asyncio.sleep(0.1)


def snapshot(status: ReleaseStatus) -> dict[str, Any]:
    """What a refused request must leave as it was (its own refusal is recorded, nothing else)."""
    return {
        "state": status.state,
        "stage": status.current_stage,
        "paused": status.paused,
        "stages": [
            (s.name, s.state, [d.user for d in (s.signoff.decisions if s.signoff else [])])
            for s in status.stages
        ],
        "flags_changed": list(status.flags_changed),
        "timeline": [
            (e.action, e.message) for e in status.timeline if not e.action.endswith(".refused")
        ],
    }

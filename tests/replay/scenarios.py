"""Releases whose histories are committed under histories/ and replayed on every test run.

Record them again (only when a workflow change is meant to be incompatible, and then with
`workflow.patched` for anything already running) with: `python -m tests.replay.record`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.flags.flagd_file import flag_file, init_flag_file
from tests.helpers import plan_dict
from warden.models.flags import FlagOperation
from warden.models.governance import AccessChangeRequest, AccessDecision
from warden.models.plan import parse_plan
from warden.models.release import AbortRequest, DecisionRequest, ReleaseInput, ReleaseState
from warden.settings import Settings
from workflows.access import AccessChangeWorkflow
from workflows.flags import FlagChangeWorkflow
from workflows.release import ReleaseWorkflow

Scenario = Callable[[WorkflowEnvironment, Settings, str, str], Awaitable[WorkflowHandle[Any, Any]]]


async def _until(
    handle: WorkflowHandle[Any, Any], env: WorkflowEnvironment, check: Callable[[Any], bool]
) -> None:
    for _ in range(2000):
        status = await handle.query(ReleaseWorkflow.status)
        if check(status):
            return
        if status.state.ended:
            raise AssertionError(f"scenario ended early: {status.result}")
        if env.supports_time_skipping:
            await env.sleep(15)
        else:
            await asyncio.sleep(0.05)
    raise AssertionError("scenario did not reach the expected state")


def _waiting(stage: str) -> Callable[[Any], bool]:
    return lambda s: s.current_stage == stage and s.state == ReleaseState.WAITING_APPROVAL


def _ramp_plan(base_url: str, version: str) -> Any:
    data = plan_dict(base_url, version=version, flags=["ai.solutions"])
    data["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    data["stages"][2]["flags"] = [{"flag": "ai.solutions", "steps": [5, 25, 50], "bake": "10m"}]
    return parse_plan(data)


async def _start(env: WorkflowEnvironment, plan: Any, task_queue: str) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(plan=plan, started_by="alice", trace_id="trace-replay"),
        id=plan.release_id,
        task_queue=task_queue,
    )


async def promoted(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    for name in ("dev", "pilot"):
        init_flag_file(flag_file(settings.flags_path, name), {"ai.solutions": 0})
    handle = await _start(env, _ramp_plan(base_url, "1.0.0"), task_queue)
    await _until(handle, env, _waiting("pilot"))
    for user in ("carol", "dave"):
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user=user, comment="ok")
        )
    await handle.result()
    return handle


async def rolled_back(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    for name in ("dev", "pilot"):
        init_flag_file(flag_file(settings.flags_path, name), {"ai.solutions": 0})
    handle = await _start(env, _ramp_plan(base_url, "1.1.0"), task_queue)
    await _until(handle, env, _waiting("pilot"))
    await handle.execute_update(
        ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol")
    )
    await handle.execute_update(
        ReleaseWorkflow.reject,
        DecisionRequest(stage="pilot", user="erin", comment="error budget spent"),
    )
    await handle.result()
    return handle


async def aborted(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    for name in ("dev", "pilot"):
        init_flag_file(flag_file(settings.flags_path, name), {"ai.solutions": 0})
    handle = await _start(env, _ramp_plan(base_url, "1.2.0"), task_queue)
    await _until(handle, env, lambda s: any(x.flag_steps for x in s.stages if x.name == "pilot"))
    await handle.execute_update(
        ReleaseWorkflow.abort, AbortRequest(user="bob", reason="customer escalation")
    )
    await handle.result()
    return handle


async def access_change(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    handle = await env.client.start_workflow(
        AccessChangeWorkflow.run,
        AccessChangeRequest(
            kind="grant", user="grace", role="operator", reason="on-call", requested_by="alice"
        ),
        id="access-grant-grace-replay",
        task_queue=task_queue,
    )
    for _ in range(200):
        if (await handle.query(AccessChangeWorkflow.status)).members:
            break
        await asyncio.sleep(0.05)
    for user in ("carol", "erin"):
        await handle.execute_update(AccessChangeWorkflow.approve, AccessDecision(user=user))
    await handle.result()
    return handle


async def kill_switch(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    init_flag_file(flag_file(settings.flags_path, "production"), {"chat.channel.feishu": 100})
    handle = await env.client.start_workflow(
        FlagChangeWorkflow.run,
        FlagOperation(
            flag="chat.channel.feishu",
            environment="production",
            percent=0,
            user="bob",
            reason="gateway flapping",
        ),
        id="flags-production-feishu-replay",
        task_queue=task_queue,
    )
    await handle.result()
    return handle


SCENARIOS: dict[str, Scenario] = {
    "release_promoted": promoted,
    "release_rolled_back": rolled_back,
    "release_aborted": aborted,
    "access_change_applied": access_change,
    "kill_switch": kill_switch,
}


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


__all__ = ["SCENARIOS", "Client"]

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack

from temporalio.client import Client

from tests.helpers import plan_dict, recording_server
from warden.models.plan import parse_plan
from warden.models.release import DecisionRequest, ReleaseInput, ReleaseState
from warden.runtime.worker import build_worker
from warden.settings import Settings
from workflows.release import ReleaseWorkflow


async def test_release_promotes_through_every_stage(
    client: Client, settings: Settings, task_queue: str
) -> None:
    with recording_server() as target:
        plan = parse_plan(plan_dict(target.url, version=f"1.0.{uuid.uuid4().hex[:6]}"))
        async with AsyncExitStack() as stack:
            async with build_worker(client, settings, task_queue=task_queue, stack=stack):
                handle = await client.start_workflow(
                    ReleaseWorkflow.run,
                    ReleaseInput(plan=plan, started_by="alice", trace_id="t-1"),
                    id=plan.release_id,
                    task_queue=task_queue,
                )
                import asyncio

                for _ in range(100):
                    status = await handle.query(ReleaseWorkflow.status)
                    if status.state == ReleaseState.WAITING_APPROVAL:
                        break
                    await asyncio.sleep(0.1)
                await handle.execute_update(
                    ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol")
                )
                await handle.execute_update(
                    ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="dave")
                )
                result = await handle.result()
    assert result.outcome == ReleaseState.PROMOTED, result
    assert result.promoted_stages == ["dev", "staging", "pilot", "production"]

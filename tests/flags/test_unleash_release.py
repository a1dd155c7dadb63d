"""A release with its flags in Unleash: pilot ramps ai.solutions, the committee rejects, Unleash is put back."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client

from activities.flags import FlagActivities
from tests.harness.unleash import UnleashAdmin, UnleashServer
from tests.helpers import plan_dict, recording_server
from warden.flagstore.unleash import UnleashBackend
from warden.models.plan import parse_plan
from warden.models.release import DecisionRequest, ReleaseInput, ReleaseState
from warden.runtime.worker import build_worker
from warden.settings import Settings
from workflows.release import ReleaseWorkflow

FLAG = "ai.solutions"


def _unleash_view(admin: UnleashAdmin) -> dict[str, Any]:
    """Both Unleash environments of the flag, strategy ids included, usage counters left out."""
    return {
        env: {
            k: v
            for k, v in admin.environment(FLAG, env).items()
            if k not in ("lastSeenAt", "yes", "no")
        }
        for env in ("development", "production")
    }


def _flag_activities(flags: FlagActivities) -> list[Any]:
    return [
        flags.check_flags,
        flags.snapshot_flags,
        flags.read_flags,
        flags.apply_flag_change,
        flags.restore_flags,
    ]


async def test_rejected_pilot_rolls_unleash_back_to_the_snapshot(
    client: Client,
    settings: Settings,
    task_queue: str,
    unleash_server: UnleashServer,
    unleash_admin: UnleashAdmin,
) -> None:
    # Before the release: production on for internal testers, and a production-only canary.
    unleash_admin.create_flag(FLAG, description="AI suggested solutions in the agent console")
    unleash_admin.add_strategy(
        FLAG,
        "production",
        {
            "name": "default",
            "title": "internal testers",
            "constraints": [
                {"contextName": "userId", "operator": "IN", "values": ["u-ops-1", "u-ops-2"]}
            ],
        },
    )
    unleash_admin.add_strategy(
        FLAG,
        "production",
        {
            "name": "flexibleRollout",
            "title": "production canary",
            "constraints": [{"contextName": "stage", "operator": "IN", "values": ["production"]}],
            "parameters": {"rollout": "5", "stickiness": "default", "groupId": FLAG},
        },
    )
    unleash_admin.set_enabled(FLAG, "production", True)
    before = _unleash_view(unleash_admin)

    unleash_settings = settings.model_copy(
        update={
            "flag_backend": "unleash",
            "unleash_url": unleash_server.url,
            "unleash_token": SecretStr(unleash_server.admin_token),
        }
    )
    backend = UnleashBackend.from_settings(unleash_settings)
    pilot_before = await backend.read("pilot", [FLAG])

    with recording_server() as target:
        data = plan_dict(target.url, version=f"2.4.{uuid.uuid4().hex[:6]}", flags=[FLAG])
        data["stages"][2]["flags"] = [{"flag": FLAG, "steps": [25, 100]}]
        plan = parse_plan(data)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(backend.aclose)
            async with build_worker(
                client,
                unleash_settings,
                task_queue=task_queue,
                overrides=_flag_activities(FlagActivities(backend)),
                stack=stack,
            ):
                handle = await client.start_workflow(
                    ReleaseWorkflow.run,
                    ReleaseInput(
                        plan=plan, started_by="alice", trace_id=f"trace-{uuid.uuid4().hex[:8]}"
                    ),
                    id=plan.release_id,
                    task_queue=task_queue,
                )
                for _ in range(600):
                    status = await handle.query(ReleaseWorkflow.status)
                    if status.state == ReleaseState.WAITING_APPROVAL or status.state.ended:
                        break
                    await asyncio.sleep(0.05)
                assert status.state == ReleaseState.WAITING_APPROVAL, status.current_step
                pilot = next(s for s in status.stages if s.name == "pilot")
                assert [step.percent for step in pilot.flag_steps] == [25, 100]
                # Pilot is open in Unleash while the committee looks at it.
                production = unleash_admin.environment(FLAG, "production")
                [owned] = [
                    s for s in production["strategies"] if s.get("title") == "release-warden:pilot"
                ]
                assert owned["parameters"]["rollout"] == "100"
                assert owned["constraints"] == [
                    {"contextName": "stage", "operator": "IN", "values": ["pilot"]}
                ]

                await handle.execute_update(
                    ReleaseWorkflow.reject,
                    DecisionRequest(
                        stage="pilot", user="dave", comment="ticket backlog grows with AI answers"
                    ),
                )
                result = await handle.result()

    assert result.outcome == ReleaseState.ROLLED_BACK, result.reason
    assert result.rollback is not None and result.rollback.report is not None
    assert result.rollback.report.verified
    assert [(s.flag, s.environment) for s in result.rollback.report.restored] == [(FLAG, "pilot")]
    assert _unleash_view(unleash_admin) == before
    reader = UnleashBackend.from_settings(unleash_settings)
    try:
        assert await reader.read("pilot", [FLAG]) == pilot_before
    finally:
        await reader.aclose()

"""Pause, resume and abort over a long release: every automatic pause is announced, however long
its timeline has grown (the timeline keeps its last 200 entries)."""

from __future__ import annotations

import json
import uuid
from contextlib import AsyncExitStack
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.metrics import ManualClock, MetricActivities
from tests.helpers import RecordingServer
from tests.metrics.support import ScriptedProvider
from tests.workflows.conftest import Releases
from warden.models.audit import AuditQuery
from warden.models.plan import parse_plan
from warden.models.release import (
    AbortRequest,
    ControlRequest,
    RefusalRecord,
    ReleaseInput,
    ReleaseState,
    ReleaseStatus,
)
from warden.runtime.worker import build_worker
from warden.settings import Settings
from warden.stores.audit import AuditStore
from workflows.ledger import TIMELINE_LIMIT
from workflows.release import ReleaseWorkflow


def _plan() -> Any:
    """One stage whose pre-promotion check never gets a value: it pauses on every run."""
    return parse_plan(
        {
            "service": "support-desk",
            "version": f"3.0.{uuid.uuid4().hex[:8]}",
            "owner": "alice",
            "stages": [
                {
                    "name": "pilot",
                    "base_url": "http://127.0.0.1:9",
                    "checks": [
                        {
                            "name": "error-rate",
                            "query": {"provider": "prometheus", "query": "x"},
                            "max": 0.05,
                            "interval": "10s",
                        }
                    ],
                }
            ],
        }
    )


async def _refusals(handle: Any, count: int) -> None:
    for _ in range(count):
        await handle.signal(
            ReleaseWorkflow.record_refusal,
            RefusalRecord(
                refusal_id=uuid.uuid4().hex,
                request="approve",
                user="mallory",
                reason="mallory is not a member of the sign-off for pilot",
            ),
        )


async def test_every_automatic_pause_is_announced_past_200_timeline_events(
    time_env: WorkflowEnvironment, client: Client, settings: Settings, task_queue: str
) -> None:
    provider = ScriptedProvider({"error-rate": [None]})
    metrics = MetricActivities({"prometheus": provider}, clock=ManualClock())
    with RecordingServer() as webhook:
        governed = settings.model_copy(update={"webhook_urls": [webhook.url]})
        async with AsyncExitStack() as stack:
            worker = build_worker(
                client,
                governed,
                task_queue=task_queue,
                overrides=[metrics.run_checks],
                stack=stack,
            )
            await stack.enter_async_context(worker)
            plan = _plan()
            handle = await client.start_workflow(
                ReleaseWorkflow.run,
                ReleaseInput(plan=plan, started_by="alice", trace_id="trace-pauses"),
                id=plan.release_id,
                task_queue=task_queue,
            )
            waits = Releases(time_env, governed, task_queue, "http://127.0.0.1:9")

            def paused(status: ReleaseStatus) -> bool:
                return status.state == ReleaseState.PAUSED

            await waits.wait_for(handle, paused)
            for round_ in range(3):
                # Enough refusals that the timeline is past its limit before the next pause.
                await _refusals(handle, TIMELINE_LIMIT + 10 if round_ == 0 else 5)
                if round_ < 2:
                    await handle.execute_update(
                        ReleaseWorkflow.resume, ControlRequest(user="bob", reason="re-run")
                    )
                    await waits.wait_for(handle, paused)
            await handle.execute_update(
                ReleaseWorkflow.abort, AbortRequest(user="bob", reason="no metrics in pilot")
            )
            result = await handle.result()
            status = await handle.query(ReleaseWorkflow.status)

    assert result.outcome == ReleaseState.ABORTED
    assert len(status.timeline) == TIMELINE_LIMIT  # the timeline really overflowed
    notices = [json.loads(r["body"]) for r in webhook.requests if r["body"]]
    pauses = [n for n in notices if n["title"] == f"Release {plan.release_id} paused"]
    assert len(pauses) == 3, [n["title"] for n in notices]
    assert len({n["key"] for n in pauses}) == 3
    rows = AuditStore(governed.audit_url).query(
        AuditQuery(releaseId=plan.release_id, action="release.paused")
    )
    assert [r.details.get("automatic") for r in rows] == [True, True, True]

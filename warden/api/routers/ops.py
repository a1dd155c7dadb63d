"""Operational endpoints (`/ops/...`): only behind WARDEN_OPS_ENDPOINTS and its whitelists.

GET  /ops/task-queue                      who polls the task queue, and how big its backlog is
POST /ops/releases/{id}/force-restore     put a release's flags back as captured, read back, audited
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from warden.api.deps import Flags, Releases, gate, ops_call
from warden.api.models import (
    RELEASE_ID_PATTERN,
    ForceRestoreCreate,
    ForceRestorePublic,
    PollerPublic,
    TaskQueueKindPublic,
    TaskQueuePublic,
)
from warden.api.responses import errors
from warden.api.state import api_state
from warden.errors import BackendFailed
from warden.stores.governance import Principal

router = APIRouter(prefix="/ops", tags=["ops"])

TaskQueueCaller = Annotated[Principal, Depends(gate("ops", "task-queue", "ops.use"))]
RestoreCaller = Annotated[Principal, Depends(gate("ops", "force-restore", "ops.use"))]

_OFF = "Switched off (WARDEN_OPS_ENDPOINTS), or no such release."


async def _describe(
    client: Client, task_queue: str, kind: TaskQueueType.ValueType
) -> TaskQueueKindPublic:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=kind,
            report_stats=True,
        )
    )
    pollers = [
        PollerPublic(
            identity=p.identity,
            last_access_time=p.last_access_time.ToDatetime(tzinfo=UTC)
            if p.HasField("last_access_time")
            else None,
            rate_per_second=p.rate_per_second,
        )
        for p in response.pollers
    ]
    if not response.HasField("stats"):
        return TaskQueueKindPublic(pollers=pollers)
    stats = response.stats
    return TaskQueueKindPublic(
        pollers=pollers,
        backlog=stats.approximate_backlog_count,
        backlog_age_s=stats.approximate_backlog_age.ToTimedelta().total_seconds(),
        add_rate=stats.tasks_add_rate,
        dispatch_rate=stats.tasks_dispatch_rate,
    )


@router.get(
    "/task-queue",
    response_model=TaskQueuePublic,
    summary="Pollers and backlog of the task queue",
    responses=errors(401, 403, 404, 503, not_found=_OFF),
)
async def task_queue(request: Request, principal: TaskQueueCaller) -> TaskQueuePublic:
    """Which workers poll Release Warden's task queue, and how many tasks wait for one."""
    api = api_state(request)
    async with ops_call(request, principal, "ops", "task-queue") as details:
        client = await api.temporal.client()
        queue = api.settings.task_queue
        report = TaskQueuePublic(
            namespace=client.namespace,
            task_queue=queue,
            workflow=await _describe(client, queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
            activity=await _describe(client, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        )
        details.update(
            {
                "taskQueue": queue,
                "workflowPollers": len(report.workflow.pollers),
                "backlog": report.workflow.backlog,
            }
        )
    return report


@router.post(
    "/releases/{release_id}/force-restore",
    response_model=ForceRestorePublic,
    summary="Restore a release's flags by hand",
    responses=errors(
        401,
        403,
        404,
        409,
        422,
        502,
        503,
        not_found=_OFF,
        conflict="ReleaseActive (pause or abort it first) or NothingToRestore.",
    ),
)
async def force_restore(
    request: Request,
    release_id: Annotated[str, Path(pattern=RELEASE_ID_PATTERN)],
    body: ForceRestoreCreate,
    principal: RestoreCaller,
    releases: Releases,
    flags: Flags,
) -> ForceRestorePublic:
    """Write back every flag the release changed, exactly as captured before it started, then read
    each one back. Refused (409) while the release runs unpaused: pause or abort it first."""
    api = api_state(request)
    async with ops_call(
        request, principal, "ops", "force-restore", release_id=release_id
    ) as details:
        details.update({"reason": body.reason, "environments": body.environments})
        try:
            restored = await flags.force_restore(releases, release_id, body.environments)
        except BackendFailed:
            api.metrics.rollbacks.labels("force-restore", "error").inc()
            raise
        result = "verified" if restored.verified else "mismatch"
        api.metrics.rollbacks.labels("force-restore", result).inc()
        restored_public: list[dict[str, Any]] = [
            s.model_dump(mode="json", exclude={"definition"}) for s in restored.restored
        ]
        details.update(
            {
                "result": "restored" if restored.verified else "mismatch",
                "source": restored.source,
                "flags": restored.flags,
                "environments": restored.environments,
                "restored": restored_public,
                "mismatches": restored.mismatches,
            }
        )
    return ForceRestorePublic(
        release_id=release_id,
        verified=restored.verified,
        environments=restored.environments,
        flags=restored.flags,
        restored=restored.restored,
        mismatches=restored.mismatches,
        source=restored.source,
    )

"""Operator and governance operations from the outside: the kill switch, access changes, sign-off."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from warden.models.flags import FlagOperation, FlagOperationResult, FlagReadRequest, FlagState
from warden.models.governance import AccessChangeRequest, AccessChangeStatus, AccessDecision
from warden.services.releases import QUERY_TIMEOUT, RequestRefused, UnknownRelease, WardenError
from warden.settings import Settings
from workflows.access import AccessChangeWorkflow
from workflows.flags import FlagChangeWorkflow, FlagReadWorkflow


def _short_id() -> str:
    return uuid.uuid4().hex[:8]


class FlagService:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    async def change(self, op: FlagOperation) -> FlagOperationResult:
        try:
            return await self.client.execute_workflow(
                FlagChangeWorkflow.run,
                op,
                id=f"flags-{op.environment}-{op.flag}-{_short_id()}",
                task_queue=self.settings.task_queue,
                static_summary=f"{op.user}: {op.flag} → {op.percent}% in {op.environment}",
            )
        except WorkflowFailureError as exc:
            raise WardenError(_failure_message(exc)) from None

    async def read(self, environments: list[str], flags: list[str]) -> list[FlagState]:
        try:
            return await self.client.execute_workflow(
                FlagReadWorkflow.run,
                FlagReadRequest(environments=environments, flags=flags),
                id=f"flags-read-{_short_id()}",
                task_queue=self.settings.task_queue,
            )
        except WorkflowFailureError as exc:
            raise WardenError(_failure_message(exc)) from None

    async def releases_touching(self, flag: str, environment: str) -> list[str]:
        """Running releases whose plan ramps this flag in this environment."""
        found = []
        async for execution in self.client.list_workflows(
            "WorkflowType = 'ReleaseWorkflow' AND ExecutionStatus = 'Running'"
        ):
            memo = await execution.memo()
            if flag in memo.get("flags", []) and environment in memo.get("environments", []):
                found.append(execution.id)
        return found


class AccessService:
    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    async def request(self, request: AccessChangeRequest) -> str:
        subject = request.user or "governance"
        change_id = f"access-{request.kind}-{subject}-{_short_id()}"
        await self.client.start_workflow(
            AccessChangeWorkflow.run,
            request,
            id=change_id,
            task_queue=self.settings.task_queue,
            memo={
                "kind": request.kind,
                "user": request.user,
                "role": request.role,
                "requested_by": request.requested_by,
            },
            static_summary=f"{request.requested_by}: {request.kind} {request.role or ''} {request.user or ''}".strip(),
        )
        return change_id

    async def status(self, change_id: str) -> AccessChangeStatus:
        handle = self.client.get_workflow_handle_for(AccessChangeWorkflow.run, change_id)
        try:
            return await handle.query(AccessChangeWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise UnknownRelease(
                    f"unknown access change {change_id!r} (see `warden access list`)"
                ) from None
            raise

    async def wait(self, change_id: str) -> AccessChangeStatus:
        return await self.client.get_workflow_handle_for(
            AccessChangeWorkflow.run, change_id
        ).result()

    async def decide(
        self, change_id: str, decision: AccessDecision, approve: bool
    ) -> AccessChangeStatus:
        handle = self.client.get_workflow_handle_for(AccessChangeWorkflow.run, change_id)
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise UnknownRelease(
                    f"unknown access change {change_id!r} (see `warden access list`)"
                ) from None
            raise
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise RequestRefused(f"access change {change_id} has already ended", "Ended")
        update = AccessChangeWorkflow.approve if approve else AccessChangeWorkflow.reject
        try:
            return await handle.execute_update(update, decision, rpc_timeout=QUERY_TIMEOUT)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                raise RequestRefused(cause.message, cause.type or "Refused") from None
            raise RequestRefused(str(cause)) from None

    async def list(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = []
        async for execution in self.client.list_workflows(
            "WorkflowType = 'AccessChangeWorkflow'", limit=limit
        ):
            memo = await execution.memo()
            rows.append(
                {
                    "change_id": execution.id,
                    "kind": memo.get("kind"),
                    "user": memo.get("user"),
                    "role": memo.get("role"),
                    "requested_by": memo.get("requested_by"),
                    "status": execution.status.name.lower() if execution.status else "",
                    "started_at": execution.start_time.isoformat()
                    if execution.start_time
                    else None,
                }
            )
        return rows


def _failure_message(exc: WorkflowFailureError) -> str:
    inner: BaseException | None = exc.cause
    while inner is not None and getattr(inner, "cause", None) is not None:
        inner = inner.cause  # type: ignore[attr-defined]
    if isinstance(inner, ApplicationError):
        return inner.message
    return str(inner or exc)

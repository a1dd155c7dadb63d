"""Access changes from the outside: roles, permissions and the governance file's sign-off change
only when the access committee approves (`AccessChangeWorkflow`)."""

from __future__ import annotations

from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from warden.errors import NotFound
from warden.models.governance import (
    AccessChangeRequest,
    AccessChangeStatus,
    AccessChangeSummary,
    AccessDecision,
)
from warden.runtime.client import TemporalLink
from warden.services.flags import short_id
from warden.services.releases import QUERY_TIMEOUT, RequestRefused
from warden.services.trust import trust_policy, with_proof
from workflows.access import AccessChangeWorkflow


class UnknownAccessChange(NotFound):
    def __init__(self, change_id: str) -> None:
        super().__init__(f"unknown access change {change_id!r} (see `warden access list`)")


class AccessService:
    def __init__(self, temporal: TemporalLink) -> None:
        self.temporal = temporal
        self.settings = temporal.settings

    async def request(self, request: AccessChangeRequest) -> str:
        request = request.model_copy(update={"trust": trust_policy(self.settings)})
        subject = request.user or "governance"
        change_id = f"access-{request.kind}-{subject}-{short_id()}"
        client = await self.temporal.client()
        await client.start_workflow(
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
        client = await self.temporal.client()
        handle = client.get_workflow_handle_for(AccessChangeWorkflow.run, change_id)
        try:
            return await handle.query(AccessChangeWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise UnknownAccessChange(change_id) from None
            raise

    async def wait(self, change_id: str) -> AccessChangeStatus:
        client = await self.temporal.client()
        return await client.get_workflow_handle_for(AccessChangeWorkflow.run, change_id).result()

    async def decide(
        self, change_id: str, decision: AccessDecision, approve: bool
    ) -> AccessChangeStatus:
        client = await self.temporal.client()
        handle = client.get_workflow_handle_for(AccessChangeWorkflow.run, change_id)
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise UnknownAccessChange(change_id) from None
            raise
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise RequestRefused(f"access change {change_id} has already ended", "Ended")
        update = AccessChangeWorkflow.approve if approve else AccessChangeWorkflow.reject
        decision = with_proof(
            self.settings, decision, action="approve" if approve else "reject", target=change_id
        )
        try:
            return await handle.execute_update(update, decision, rpc_timeout=QUERY_TIMEOUT)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                raise RequestRefused(cause.message, cause.type or "Refused") from None
            raise RequestRefused(str(cause)) from None

    async def list(self, limit: int = 50) -> list[AccessChangeSummary]:
        rows = []
        client = await self.temporal.client()
        async for execution in client.list_workflows(
            "WorkflowType = 'AccessChangeWorkflow'", limit=limit
        ):
            memo = await execution.memo()
            rows.append(
                AccessChangeSummary(
                    change_id=execution.id,
                    kind=memo.get("kind"),
                    user=memo.get("user"),
                    role=memo.get("role"),
                    requested_by=memo.get("requested_by"),
                    status=execution.status.name.lower() if execution.status else "",
                    started_at=execution.start_time,
                )
            )
        return rows

"""Access changes from the outside: roles, permissions and the governance file's sign-off change
only when the access committee approves (`AccessChangeWorkflow`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from warden import tracing
from warden.errors import NotFound
from warden.models.governance import (
    AccessChangeRequest,
    AccessChangeRow,
    AccessChangeStatus,
    AccessDecision,
    AccessDecisionOutcome,
)
from warden.runtime.client import TemporalLink
from warden.services.flags import short_id
from warden.services.releases import (
    QUERY_TIMEOUT,
    RequestRefused,
    refusal_of,
    report_refusal,
    trace_search_attributes,
)
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
        with tracing.in_trace(request.trace_id):
            await self._start(client, request, change_id)
        return change_id

    async def _start(self, client: Client, request: AccessChangeRequest, change_id: str) -> None:
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
            search_attributes=trace_search_attributes(self.settings, request.trace_id),
        )

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
    ) -> AccessDecisionOutcome:
        """Approve or reject: the same decision again is counted once (exit 0 for the CLI), a
        different one from someone who decided already is refused (`AlreadyDecided`); every
        refusal is audited by the change itself."""
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
        before = await handle.query(AccessChangeWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        update = AccessChangeWorkflow.approve if approve else AccessChangeWorkflow.reject
        decision = with_proof(
            self.settings, decision, action="approve" if approve else "reject", target=change_id
        )
        try:
            status = await handle.execute_update(update, decision, rpc_timeout=QUERY_TIMEOUT)
        except WorkflowUpdateFailedError as exc:
            message, code = refusal_of(exc)
            await report_refusal(
                exc,
                handle,
                AccessChangeWorkflow.record_refusal,
                "approve" if approve else "reject",
                decision.user,
                message,
                dev_identity=decision.dev_identity,
            )
            raise RequestRefused(message, code) from None
        earlier = before.approvals if approve else before.rejections
        counted = decision.user not in earlier
        verb = "approval" if approve else "rejection"
        message = (
            f"{verb} by {decision.user} recorded"
            if counted
            else f"{decision.user} already {'approved' if approve else 'rejected'} it; counted once"
        )
        return AccessDecisionOutcome(
            change_id=change_id,
            user=decision.user,
            approve=approve,
            counted=counted,
            approvals=len(status.approvals),
            rejections=len(status.rejections),
            quorum=status.quorum,
            state=status.state,
            message=message,
        )

    async def list(self, limit: int = 50) -> list[AccessChangeRow]:
        """Access changes, newest first, each with its outcome: from the memo a change writes
        when it ends; for changes recorded before that, from their result."""
        rows = []
        client = await self.temporal.client()
        async for execution in client.list_workflows(
            "WorkflowType = 'AccessChangeWorkflow'", limit=limit
        ):
            memo = await execution.memo()
            outcome, message = await _outcome(
                client.get_workflow_handle_for(AccessChangeWorkflow.run, execution.id),
                execution,
                memo,
            )
            rows.append(
                AccessChangeRow(
                    change_id=execution.id,
                    kind=memo.get("kind"),
                    user=memo.get("user"),
                    role=memo.get("role"),
                    requested_by=memo.get("requested_by"),
                    outcome=outcome,
                    message=message,
                    started_at=execution.start_time,
                    closed_at=execution.close_time,
                )
            )
        return rows


async def _outcome(
    handle: WorkflowHandle[Any, AccessChangeStatus],
    execution: WorkflowExecution,
    memo: Mapping[str, Any],
) -> tuple[str, str]:
    if execution.status == WorkflowExecutionStatus.RUNNING:
        return "waiting", ""
    if "outcome" in memo:
        return str(memo["outcome"]), str(memo.get("message", ""))
    if execution.status == WorkflowExecutionStatus.COMPLETED:
        try:  # the result is in the history: no worker needed
            result = await handle.result()
        except (WorkflowFailureError, RPCError):
            return "completed", ""
        return result.state, result.message
    return execution.status.name.lower() if execution.status else "unknown", ""

"""Short audited workflows over the flag backend: the operator's kill switch, and reading flags.

Switching a channel off at 3 a.m. goes through the same activities, retries and audit trail
as a release, so it is recorded like everything else and works wherever the workers run.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.flags import FlagActivities
    from warden.models.flags import (
        FlagChange,
        FlagChangeInput,
        FlagOperation,
        FlagOperationResult,
        FlagReadRequest,
        FlagsInput,
        FlagState,
    )
    from warden.models.notice import Notice
    from workflows import policies
    from workflows.common import audit_event, cause, send_notice, write_audit


async def _audit(op: FlagOperation, action: str, result: str, details: dict[str, Any]) -> None:
    event = audit_event(
        action,
        result,
        user=op.user,
        entity=f"flag:{op.flag}@{op.environment}",
        release_id=None,
        trace_id=op.trace_id or None,
        details=details,
    )
    await write_audit([event])


@workflow.defn
class FlagChangeWorkflow:
    @workflow.run
    async def run(self, op: FlagOperation) -> FlagOperationResult:
        await _audit(
            op,
            "killswitch.requested",
            "requested",
            {"percent": op.percent, "reason": op.reason, "devIdentity": op.dev_identity},
        )
        try:
            result = await workflow.execute_activity_method(
                FlagActivities.apply_flag_change,
                FlagChangeInput(
                    release_id=workflow.info().workflow_id,
                    change=FlagChange(flag=op.flag, environment=op.environment, percent=op.percent),
                    trace_id=op.trace_id,
                    user=op.user,
                ),
                **policies.flag_write_options(),
            )
        except ActivityError as exc:
            problem = cause(exc)
            await _audit(
                op, "killswitch.failed", "failed", {"percent": op.percent, "problem": problem}
            )
            raise ApplicationError(problem, type="FlagChangeFailed", non_retryable=True) from None
        await _audit(
            op,
            "killswitch.applied",
            "changed" if result.changed else "unchanged",
            {
                "percent": op.percent,
                "before": result.before.percent if result.before else None,
                "reason": op.reason,
            },
        )
        await send_notice(
            Notice(
                key=f"{workflow.info().workflow_id}:applied",
                title=f"Flag {op.flag} set to {op.percent}% in {op.environment} by {op.user}",
                text=op.reason,
                severity="warning" if op.percent == 0 else "info",
                audience=["operations"],
                trace_id=op.trace_id or None,
            )
        )
        return FlagOperationResult(
            flag=op.flag,
            environment=op.environment,
            percent=op.percent,
            changed=result.changed,
            before=result.before,
            after=result.after,
        )


@workflow.defn
class FlagReadWorkflow:
    """Read flags where the workers are (their flag files or flag service), without changing them."""

    @workflow.run
    async def run(self, request: FlagReadRequest) -> list[FlagState]:
        return await workflow.execute_activity_method(
            FlagActivities.read_flags,
            FlagsInput(
                release_id=workflow.info().workflow_id,
                environments=request.environments,
                flags=request.flags,
                trace_id="",
            ),
            **policies.flag_read_options(),
        )

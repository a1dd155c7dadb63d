"""A kill switch whose code changed: it reads the flag before it changes it (a different order
of activities), registered under the same workflow type name. Its histories do not replay
against the real `FlagChangeWorkflow`."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.flags import FlagActivities
    from warden.models.flags import FlagOperation, FlagOperationResult, FlagsInput
    from workflows import policies
    from workflows.flags import FlagChangeWorkflow


@workflow.defn(name="FlagChangeWorkflow")
class ReadFirstFlagChangeWorkflow(FlagChangeWorkflow):
    @workflow.run
    async def run(self, op: FlagOperation) -> FlagOperationResult:
        await workflow.execute_activity_method(
            FlagActivities.read_flags,
            FlagsInput(
                release_id=workflow.info().workflow_id,
                environments=[op.environment],
                flags=[op.flag],
                trace_id=op.trace_id,
            ),
            **policies.flag_read_options(),
        )
        return await super().run(op)

"""Governance (checklist item 4 for production): the governance file's version is signed off.

Checked once before any stage runs, so that a release that could never reach production does not
start changing flags, and again before each production stage: the file may have changed while
the earlier stages ran, and a new version needs its own sign-off.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.control import ReleaseControl
from workflows.ledger import ReleaseLedger
from workflows.stop import ReleaseStop, gate_activity

with workflow.unsafe.imports_passed_through():
    from activities.governance import GovernanceActivities
    from warden.models.governance import GovernanceStatus
    from warden.models.plan import Stage
    from warden.models.release import ChecklistKey, ItemStatus, ReleaseInput, ReleaseState
    from workflows import policies


class GovernanceGate:
    def __init__(self, input: ReleaseInput, ledger: ReleaseLedger, control: ReleaseControl) -> None:
        self._input = input
        self._ledger = ledger
        self._control = control
        self.governance: GovernanceStatus | None = None

    async def _status(self, stage: str) -> GovernanceStatus:
        return await gate_activity(
            "governance",
            stage,
            workflow.execute_activity_method(
                GovernanceActivities.governance_status, **policies.governance_options()
            ),
        )

    async def prepare(self) -> None:
        """Before the first stage: production stages need the governance file's version signed off."""
        production = [s for s in self._input.plan.stages if s.is_production]
        if not production:
            return
        self._ledger.step("checking the governance file is signed off")
        governance = await self._status(production[0].name)
        self.governance = governance
        if not governance.configured:
            if self._input.options.require_governance:
                raise ReleaseStop(
                    ReleaseState.FAILED,
                    "no governance file is configured, and production releases need a signed-off "
                    "one (set WARDEN_GOVERNANCE_FILE)",
                    "governance",
                    production[0].name,
                )
            return
        if governance.signoff is None:
            reason = (
                f"governance file version {governance.version} is not signed off by committee "
                f"{governance.access_committee}; request it with "
                "`warden governance signoff --reason ...`"
            )
            for stage in production:
                self._ledger.item(stage.name, ChecklistKey.SIGNOFF, ItemStatus.FAILED, reason)
            raise ReleaseStop(ReleaseState.FAILED, reason, "governance", production[0].name)
        await self._ledger.audit(
            "governance.checked",
            "signed-off",
            details={
                "version": governance.version,
                "digest": governance.digest,
                "approvedBy": governance.signoff.approved_by,
            },
        )

    async def recheck(self, stage: Stage) -> None:
        """Before a production stage: a changed, unsigned file pauses the release until signed off."""
        if self.governance is None or not self.governance.configured:
            return
        while True:
            current = await self._status(stage.name)
            if current.signoff is not None:
                self.governance = current
                return
            await self._control.auto_pause(
                f"governance file changed to version {current.version} and is not signed off; "
                "sign it off (`warden governance signoff`) and resume"
            )

    def evidence(self) -> str:
        governance = self.governance
        if governance is None or not governance.configured or governance.signoff is None:
            return ""
        return (
            f"governance file {governance.version} signed off by "
            f"{', '.join(governance.signoff.approved_by)}"
        )

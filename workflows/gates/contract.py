"""Contract tests (checklist item 1): schemathesis against the stage's OpenAPI, as the stage serves now."""

from __future__ import annotations

from temporalio import workflow

from workflows.control import ReleaseControl
from workflows.ledger import ReleaseLedger
from workflows.stop import ReleaseStop, gate_activity

with workflow.unsafe.imports_passed_through():
    from warden.models.contract import ContractInput, ContractReport
    from warden.models.plan import Stage
    from warden.models.release import ChecklistKey, ItemStatus, ReleaseState, StageStatus
    from workflows import policies


class ContractGate:
    def __init__(self, ledger: ReleaseLedger, control: ReleaseControl) -> None:
        self._ledger = ledger
        self._control = control

    async def run(self, stage: Stage, status: StageStatus) -> None:
        ledger = self._ledger
        if stage.contract is None:
            ledger.item(
                stage.name,
                ChecklistKey.CONTRACT,
                ItemStatus.NOT_APPLICABLE,
                "no contract configured",
            )
            return
        await self._control.checkpoint(f"contract tests in {stage.name}")
        report: ContractReport = await gate_activity(
            "contract",
            stage.name,
            self._control.abortable(
                workflow.execute_activity(
                    "run_contract_tests",
                    ContractInput(
                        release_id=ledger.release_id,
                        stage=stage.name,
                        base_url=stage.base_url,
                        spec=stage.contract,
                        trace_id=ledger.input.trace_id,
                    ),
                    result_type=ContractReport,
                    **policies.contract_options(stage.contract.time_budget),
                )
            ),
        )
        status.contract = report
        summary = report.summary()
        await ledger.record(
            "contract.result",
            "passed" if report.passed else "failed",
            f"contract tests {summary}",
            stage=stage.name,
            item=(
                ChecklistKey.CONTRACT,
                ItemStatus.PASSED if report.passed else ItemStatus.FAILED,
                summary,
            ),
            details={"summary": summary, "junit": report.junit_report, "json": report.json_report},
        )
        if not report.passed:
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"contract tests failed in {stage.name}: {summary}",
                "contract",
                stage.name,
            )

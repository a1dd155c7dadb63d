"""A release whose stage has a `contract` section, through the real workflow and worker."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

from temporalio.client import Client

from examples.support_desk.launcher import SupportDeskProcess
from warden.models.plan import parse_plan
from warden.models.release import (
    ChecklistKey,
    ItemStatus,
    ReleaseInput,
    ReleaseState,
    ReleaseStatus,
)
from warden.runtime.worker import build_worker
from warden.settings import Settings
from workflows.release import ReleaseWorkflow

SUGGEST = "POST /solutions/suggest"


def contract_plan(base_url: str) -> dict[str, Any]:
    contract = {"max_examples": 5, "seed": 11, "time_budget": "5m"}
    return {
        "service": "support-desk",
        "version": f"1.4.{uuid.uuid4().hex[:8]}",
        "owner": "alice",
        "stages": [
            {
                "name": "dev",
                "base_url": base_url,
                "smoke": [{"name": "health", "path": "/healthz"}],
                "contract": contract,
            },
            {
                "name": "staging",
                "base_url": base_url,
                "contract": {**contract, "include": ["suggestSolutions"]},
            },
        ],
    }


async def run_release(
    client: Client, settings: Settings, task_queue: str, base_url: str
) -> tuple[Any, ReleaseStatus]:
    plan = parse_plan(contract_plan(base_url))
    async with AsyncExitStack() as stack:
        async with build_worker(client, settings, task_queue=task_queue, stack=stack):
            handle = await client.start_workflow(
                ReleaseWorkflow.run,
                ReleaseInput(
                    plan=plan, started_by="alice", trace_id=f"trace-{uuid.uuid4().hex[:8]}"
                ),
                id=plan.release_id,
                task_queue=task_queue,
            )
            result = await handle.result()
            status: ReleaseStatus = await handle.query(ReleaseWorkflow.status)
    return result, status


async def test_release_is_promoted_when_the_contract_holds(
    client: Client, settings: Settings, task_queue: str, good_desk: SupportDeskProcess
) -> None:
    result, status = await run_release(client, settings, task_queue, good_desk.url)

    assert result.outcome == ReleaseState.PROMOTED, result.reason
    assert result.exit_code == 0
    for stage in status.stages:
        assert stage.contract is not None and stage.contract.passed
        assert stage.item(ChecklistKey.CONTRACT).status == ItemStatus.PASSED
    assert status.stages[1].contract is not None and status.stages[1].contract.operations_total == 1


async def test_release_fails_with_the_failing_operation_in_the_evidence(
    client: Client, settings: Settings, task_queue: str, bad_desk: SupportDeskProcess
) -> None:
    result, status = await run_release(client, settings, task_queue, bad_desk.url)

    assert result.outcome == ReleaseState.FAILED
    assert result.exit_code == 1
    assert result.failed_stage == "dev"
    assert "contract tests failed in dev" in result.reason and SUGGEST in result.reason
    dev, staging = status.stages
    assert dev.contract is not None and not dev.contract.passed
    assert {f.operation for f in dev.contract.failures} == {SUGGEST}
    assert all(f.curl.startswith("curl ") for f in dev.contract.failures)
    item = dev.item(ChecklistKey.CONTRACT)
    assert item.status == ItemStatus.FAILED and SUGGEST in item.evidence
    assert dev.contract.junit_report and dev.contract.junit_report.endswith("contract.junit.xml")
    assert staging.contract is None  # the release stopped at the first failing gate


async def test_release_whose_document_cannot_be_fetched_has_the_reports_in_its_evidence(
    client: Client, settings: Settings, task_queue: str
) -> None:
    from examples.support_desk.launcher import free_port

    base_url = f"http://127.0.0.1:{free_port()}"
    plan = parse_plan(
        {
            "service": "support-desk",
            "version": f"1.4.{uuid.uuid4().hex[:8]}",
            "owner": "alice",
            "stages": [{"name": "dev", "base_url": base_url, "contract": {"max_examples": 2}}],
        }
    )
    async with AsyncExitStack() as stack:
        async with build_worker(client, settings, task_queue=task_queue, stack=stack):
            handle = await client.start_workflow(
                ReleaseWorkflow.run,
                ReleaseInput(plan=plan, started_by="alice", trace_id="trace-unreachable"),
                id=plan.release_id,
                task_queue=task_queue,
            )
            result = await handle.result()
            status: ReleaseStatus = await handle.query(ReleaseWorkflow.status)

    assert result.outcome == ReleaseState.FAILED and result.failed_stage == "dev"
    assert "unreachable" in result.reason
    contract = status.stages[0].contract
    assert contract is not None and contract.error_type == "InvalidSpec"
    assert contract.json_report and contract.junit_report
    from pathlib import Path

    assert Path(contract.json_report).exists() and Path(contract.junit_report).exists()
    item = status.stages[0].item(ChecklistKey.CONTRACT)
    assert item.status == ItemStatus.FAILED and "unreachable" in item.evidence

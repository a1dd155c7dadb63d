"""Access changes, the governance file's sign-off, and production's checklist item 4."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.helpers import RecordingServer, plan_dict
from warden.models.audit import AuditQuery
from warden.models.governance import AccessChangeRequest, AccessDecision
from warden.models.plan import parse_plan
from warden.models.release import ChecklistKey, ItemStatus, ReleaseInput, ReleaseState
from warden.runtime.worker import build_worker
from warden.settings import Settings
from warden.stores.audit import AuditStore
from warden.stores.governance import GovernanceStore, effective_roles, load_governance
from workflows.access import AccessChangeWorkflow
from workflows.release import ReleaseWorkflow

GOVERNANCE = {
    "version": "2026-11-01",
    "access_committee": "release-board",
    "users": [
        {"name": "alice", "roles": ["release-manager"]},
        {"name": "bob", "roles": ["operator"]},
        {"name": "carol", "roles": ["committee-member:release-board"]},
        {"name": "dave", "roles": ["committee-member:release-board"]},
        {"name": "erin", "roles": ["committee-member:release-board"]},
        {"name": "frank", "roles": ["committee-member:release-board"]},
        {"name": "grace", "roles": ["viewer"]},
    ],
    "committees": [
        {
            "name": "release-board",
            "quorum": 2,
            "members": [
                {"user": "carol", "roles": ["after-sales"]},
                {"user": "dave", "roles": ["product"]},
                {"user": "erin", "roles": ["security"]},
                {"user": "frank", "roles": ["tech"]},
            ],
        }
    ],
}


@pytest.fixture
def governed(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump(GOVERNANCE))
    monkeypatch.setenv("WARDEN_GOVERNANCE_FILE", str(path))
    return Settings()


@pytest_asyncio.fixture
async def gov_worker(client: Client, governed: Settings, task_queue: str) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        async with build_worker(client, governed, task_queue=task_queue, stack=stack):
            yield


async def _request(client: Client, task_queue: str, **fields: object) -> object:
    request = AccessChangeRequest(**fields)  # type: ignore[arg-type]
    return await client.start_workflow(
        AccessChangeWorkflow.run,
        request,
        id=f"access-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )


async def _ready(handle: object) -> None:
    for _ in range(200):
        status = await handle.query(AccessChangeWorkflow.status)  # type: ignore[attr-defined]
        if status.members:
            return
        import asyncio

        await asyncio.sleep(0.05)
    raise AssertionError("access change never became ready")


async def test_access_change_applies_only_after_quorum(
    client: Client, governed: Settings, task_queue: str, gov_worker: None
) -> None:
    handle = await _request(
        client,
        task_queue,
        kind="grant",
        user="grace",
        role="operator",
        reason="joins on-call",
        requested_by="alice",
    )
    await _ready(handle)
    store = GovernanceStore(governed.audit_url)
    document = load_governance(governed.governance_file)  # type: ignore[arg-type]
    assert "operator" not in effective_roles(document, store.grants(), "grace")

    refused = {"alice": "SelfApproval", "grace": "SelfApproval", "bob": "NotAMember"}
    for user, kind in refused.items():
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(AccessChangeWorkflow.approve, AccessDecision(user=user))  # type: ignore[attr-defined]
        assert info.value.cause.type == kind  # type: ignore[union-attr]

    await handle.execute_update(AccessChangeWorkflow.approve, AccessDecision(user="carol"))  # type: ignore[attr-defined]
    assert "operator" not in effective_roles(
        document, store.grants(), "grace"
    )  # one approval is not quorum
    # the same decision again is answered and counted once; a different one is refused
    again = await handle.execute_update(AccessChangeWorkflow.approve, AccessDecision(user="carol"))  # type: ignore[attr-defined]
    assert again.approvals == ["carol"] and again.state == "waiting"
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(  # type: ignore[attr-defined]
            AccessChangeWorkflow.reject, AccessDecision(user="carol", comment="second thoughts")
        )
    assert info.value.cause.type == "AlreadyDecided"  # type: ignore[union-attr]
    assert "carol already approved" in str(info.value.cause)
    await handle.execute_update(AccessChangeWorkflow.approve, AccessDecision(user="erin"))  # type: ignore[attr-defined]
    result = await handle.result()  # type: ignore[attr-defined]

    assert result.state == "applied"
    assert result.approvals == ["carol", "erin"]
    assert "operator" in effective_roles(document, store.grants(), "grace")
    grant = next(g for g in store.grants() if g.user == "grace")
    assert grant.requested_by == "alice" and grant.approved_by == ["carol", "erin"]
    actions = [
        (e.action, e.result)
        for e in AuditStore(governed.audit_url).query(AuditQuery(limit=1000))
        if e.entity == f"access:{result.change_id}"
    ]
    # Refusals sent straight to Temporal are in the trail too: alice, grace, bob, carol's change.
    assert actions == [
        ("access.requested", "waiting"),
        *[("access.approve.refused", "refused")] * 3,
        ("access.approval", "accepted"),
        ("access.approval", "duplicate"),
        ("access.reject.refused", "refused"),
        ("access.approval", "accepted"),
        ("access.applied", "applied"),
    ]


async def test_rejected_access_change_changes_nothing(
    client: Client, governed: Settings, task_queue: str, gov_worker: None
) -> None:
    handle = await _request(
        client,
        task_queue,
        kind="grant",
        user="bob",
        role="admin",
        reason="wants admin",
        requested_by="bob",
    )
    await _ready(handle)
    await handle.execute_update(
        AccessChangeWorkflow.reject, AccessDecision(user="dave", comment="not needed")
    )  # type: ignore[attr-defined]
    result = await handle.result()  # type: ignore[attr-defined]
    assert result.state == "rejected"
    assert not [g for g in GovernanceStore(governed.audit_url).grants() if g.user == "bob"]


async def test_production_needs_the_governance_file_signed_off(
    client: Client,
    governed: Settings,
    task_queue: str,
    gov_worker: None,
    time_env: WorkflowEnvironment,
) -> None:
    with RecordingServer() as target:
        data = plan_dict(target.url, version=f"3.0.{uuid.uuid4().hex[:6]}")
        data["stages"][2].pop("signoff")
        plan = parse_plan(data)
        unsigned = await client.execute_workflow(
            ReleaseWorkflow.run,
            ReleaseInput(plan=plan, started_by="alice", trace_id="t"),
            id=plan.release_id,
            task_queue=task_queue,
        )
        assert unsigned.outcome == ReleaseState.FAILED
        assert "not signed off" in unsigned.reason and unsigned.promoted_stages == []

        signoff = await _request(
            client,
            task_queue,
            kind="config-signoff",
            reason="quarterly review",
            requested_by="alice",
        )
        await _ready(signoff)
        for member in ("dave", "frank"):
            await signoff.execute_update(AccessChangeWorkflow.approve, AccessDecision(user=member))  # type: ignore[attr-defined]
        assert (await signoff.result()).state == "applied"  # type: ignore[attr-defined]

        data["version"] = data["version"] + "-2"
        plan = parse_plan(data)
        handle = await client.start_workflow(
            ReleaseWorkflow.run,
            ReleaseInput(plan=plan, started_by="alice", trace_id="t"),
            id=plan.release_id,
            task_queue=task_queue,
        )
        result = await handle.result()
        assert result.outcome == ReleaseState.PROMOTED, result.reason
        status = await handle.query(ReleaseWorkflow.status)
        production = next(s for s in status.stages if s.name == "production")
        item = production.item(ChecklistKey.SIGNOFF)
        assert item.status == ItemStatus.PASSED and "dave, frank" in item.evidence


async def test_committee_signoff_uses_governance_members_and_roles(
    client: Client, governed: Settings, task_queue: str, gov_worker: None
) -> None:
    with RecordingServer() as target:
        data = plan_dict(target.url, version=f"4.0.{uuid.uuid4().hex[:6]}")
        data["stages"] = data["stages"][:3]
        data["stages"][2]["signoff"] = {
            "committee": "release-board",
            "quorum": 2,
            "required_roles": ["security"],
            "deadline": "1h",
            "escalate_before": "0s",
        }
        plan = parse_plan(data)
        handle = await client.start_workflow(
            ReleaseWorkflow.run,
            ReleaseInput(plan=plan, started_by="alice", trace_id="t"),
            id=plan.release_id,
            task_queue=task_queue,
        )
        import asyncio

        for _ in range(200):
            status = await handle.query(ReleaseWorkflow.status)
            if status.state == ReleaseState.WAITING_APPROVAL:
                break
            await asyncio.sleep(0.05)
        from warden.models.release import DecisionRequest

        for user in ("carol", "dave"):
            await handle.execute_update(
                ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user=user)
            )
        status = await handle.query(ReleaseWorkflow.status)
        assert status.state == ReleaseState.WAITING_APPROVAL  # quorum met, but no security seat yet
        assert status.current_step == (
            "waiting for sign-off of pilot: needs 2 approvals from carol, dave, erin, frank "
            "(2 so far); among them a security approver"
        )
        outcome = await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="erin")
        )
        assert outcome.decided == "approved"
        assert (await handle.result()).outcome == ReleaseState.PROMOTED

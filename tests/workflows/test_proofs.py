"""Decisions sent straight to Temporal: with a governance file, they count only with a proof that
Release Warden issued them; every refusal on that path is audited and not retryable.

A real dev server (proofs expire by the wall clock) and a worker in this process. The raw client
is the Temporal SDK's own, and once the plain `temporal` CLI, with the payload docs/governance.md
shows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.helpers import RecordingServer, plan_dict
from tests.workflows.test_governance import GOVERNANCE
from warden.models.audit import AuditQuery
from warden.models.plan import parse_plan
from warden.models.release import ControlRequest, DecisionRequest, ReleaseState, ReleaseStatus
from warden.proofs import Issuer
from warden.runtime.client import TemporalLink
from warden.runtime.devserver import find_binary
from warden.runtime.worker import build_worker
from warden.services.releases import ReleaseService
from warden.services.trust import issuer
from warden.settings import Settings
from warden.stores.audit import AuditStore
from workflows.release import ReleaseWorkflow


@pytest.fixture
def governed(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump(GOVERNANCE))
    return settings.model_copy(update={"governance_file": path})


@pytest_asyncio.fixture
async def worker(dev_env: WorkflowEnvironment, governed: Settings) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        async with build_worker(dev_env.client, governed, stack=stack):
            yield


@pytest.fixture
def target() -> Any:
    with RecordingServer() as server:
        yield server


async def _waiting(
    dev_env: WorkflowEnvironment, settings: Settings, base_url: str
) -> WorkflowHandle[Any, Any]:
    """A release started the way the CLI and the API start them, waiting at pilot's sign-off."""
    data = plan_dict(base_url, version=f"6.0.{uuid.uuid4().hex[:8]}")
    data["stages"] = data["stages"][:3]
    started = await ReleaseService(TemporalLink(settings, dev_env.client)).start(
        parse_plan(data), "alice"
    )
    handle = dev_env.client.get_workflow_handle(started.release_id)
    for _ in range(300):
        status = await handle.query(ReleaseWorkflow.status)
        if status.state == ReleaseState.WAITING_APPROVAL:
            return handle
        await asyncio.sleep(0.05)
    raise AssertionError("the release never waited for sign-off")


async def _refused(handle: WorkflowHandle[Any, Any], update: Any, request: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, request)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.non_retryable, f"{cause.type} is marked retryable"
    return cause


def _sign(settings: Settings, release_id: str, user: str, **fields: Any) -> Any:
    return issuer(settings).sign(
        user=user,
        action=fields.get("action", "approve"),
        target=fields.get("target", release_id),
        stage=fields.get("stage", "pilot"),
        now=fields.get("now", datetime.now(UTC)),
    )


async def test_a_decision_without_a_valid_proof_is_refused_audited_and_changes_nothing(
    dev_env: WorkflowEnvironment, governed: Settings, worker: None, target: RecordingServer
) -> None:
    handle = await _waiting(dev_env, governed, target.url)
    release_id = handle.id
    approve = ReleaseWorkflow.approve

    def carol(proof: Any = None) -> DecisionRequest:
        return DecisionRequest(stage="pilot", user="carol", comment="ok", proof=proof)

    cases: list[tuple[str, DecisionRequest, str, str]] = [
        ("no proof", carol(), "ProofRequired", "needs a proof"),
        (
            "another release",
            carol(_sign(governed, release_id, "carol", target="release-other-1.0.0")),
            "InvalidProof",
            "is for release-other-1.0.0",
        ),
        (
            "another stage",
            carol(_sign(governed, release_id, "carol", stage="production")),
            "InvalidProof",
            "stage production",
        ),
        (
            "expired",
            carol(_sign(governed, release_id, "carol", now=datetime.now(UTC) - timedelta(hours=1))),
            "InvalidProof",
            "expired",
        ),
        (
            "issued to dave",
            carol(_sign(governed, release_id, "dave")),
            "InvalidProof",
            "issued to dave",
        ),
        (
            "an issuer it does not trust",
            carol(
                Issuer(Ed25519PrivateKey.generate()).sign(
                    user="carol",
                    action="approve",
                    target=release_id,
                    stage="pilot",
                    now=datetime.now(UTC),
                )
            ),
            "InvalidProof",
            "does not trust",
        ),
    ]
    for what, request, kind, says in cases:
        cause = await _refused(handle, approve, request)
        assert (cause.type, says in cause.message) == (kind, True), (what, cause.message)
    # The workflow's own rules, on the raw path too: refused and audited.
    alice = DecisionRequest(stage="pilot", user="alice", proof=_sign(governed, release_id, "alice"))
    assert (await _refused(handle, approve, alice)).type == "SelfApproval"
    grace = DecisionRequest(stage="pilot", user="grace", proof=_sign(governed, release_id, "grace"))
    assert (await _refused(handle, approve, grace)).type == "NotAMember"

    status: ReleaseStatus = await handle.query(ReleaseWorkflow.status)
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert pilot.signoff is not None and pilot.signoff.decisions == []
    rows = AuditStore(governed.audit_url).query(
        AuditQuery(releaseId=release_id, action="approve.refused")
    )
    assert len(rows) == len(cases) + 2
    assert {r.userId for r in rows} == {"carol", "alice", "grace"}
    assert all(r.details["reason"] for r in rows)

    # With a valid proof it counts, as proven (not claimed).
    counted = await handle.execute_update(approve, carol(_sign(governed, release_id, "carol")))
    assert counted.counted and counted.approvals == 1
    status = await handle.query(ReleaseWorkflow.status)
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert [(d.user, d.dev_identity) for d in pilot.signoff.decisions] == [("carol", False)]  # type: ignore[union-attr]

    # A proof is good once.
    pause = _sign(governed, release_id, "bob", action="pause", stage=None)
    await handle.execute_update(ReleaseWorkflow.pause, ControlRequest(user="bob", proof=pause))
    resume = _sign(governed, release_id, "bob", action="resume", stage=None)
    await handle.execute_update(ReleaseWorkflow.resume, ControlRequest(user="bob", proof=resume))
    again = await _refused(handle, ReleaseWorkflow.pause, ControlRequest(user="bob", proof=pause))
    assert "used already" in again.message
    await handle.terminate("test done")


async def test_the_plain_temporal_cli_is_refused_unless_unsigned_decisions_are_allowed(
    dev_env: WorkflowEnvironment, governed: Settings, worker: None, target: RecordingServer
) -> None:
    handle = await _waiting(dev_env, governed, target.url)
    address = dev_env.client.service_client.config.target_host
    payload = json.dumps({"stage": "pilot", "user": "carol", "comment": "ok"})
    process = await asyncio.create_subprocess_exec(
        str(find_binary("temporal")), "workflow", "update", "execute",
        "--address", address, "--workflow-id", handle.id, "--name", "approve",
        "--input", payload,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode != 0
    assert "needs a proof" in (out + err).decode()
    rows = AuditStore(governed.audit_url).query(
        AuditQuery(releaseId=handle.id, action="approve.refused")
    )
    assert [(r.userId, r.details["type"]) for r in rows] == [("carol", "ProofRequired")]
    await handle.terminate("test done")

    # A team that lets admins decide with the plain CLI says so; such decisions count, claimed.
    lenient = governed.model_copy(update={"allow_unsigned_decisions": True})
    handle = await _waiting(dev_env, lenient, target.url)
    outcome = await handle.execute_update(
        ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol")
    )
    assert outcome.counted
    status = await handle.query(ReleaseWorkflow.status)
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert [(d.user, d.dev_identity) for d in pilot.signoff.decisions] == [("carol", True)]  # type: ignore[union-attr]
    await handle.terminate("test done")


async def test_without_a_governance_file_raw_decisions_count_as_claimed(
    dev_env: WorkflowEnvironment, settings: Settings, target: RecordingServer
) -> None:
    async with AsyncExitStack() as stack:
        async with build_worker(dev_env.client, settings, stack=stack):
            handle = await _waiting(dev_env, settings, target.url)
            outcome = await handle.execute_update(
                ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol")
            )
            assert outcome.counted
            status = await handle.query(ReleaseWorkflow.status)
            pilot = next(s for s in status.stages if s.name == "pilot")
            decisions = pilot.signoff.decisions  # type: ignore[union-attr]
            assert [(d.user, d.dev_identity) for d in decisions] == [("carol", True)]
            rows = AuditStore(settings.audit_url).query(
                AuditQuery(releaseId=handle.id, action="signoff.approval")
            )
            assert [r.details["devIdentity"] for r in rows] == [True]
            await handle.terminate("test done")

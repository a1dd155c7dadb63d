"""Bad update payloads through the plain `temporal` CLI: refused with a reason, nothing changes,
and the release (or access change) still completes afterwards: no stuck workflow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.fuzz.live import (
    MEMBERS,
    STARTED_BY,
    TEMPORAL,
    Live,
    park_release,
    run_all,
    run_process,
    snapshot,
    wait_for,
)
from tests.fuzz.payloads import RAW_ENCODINGS, Payload, access_payloads, release_payloads
from tests.fuzz.support import TALLY, draw_cases, examples
from tests.helpers import RecordingServer
from warden.models.governance import AccessChangeRequest, AccessChangeStatus
from warden.runtime.worker import build_worker
from warden.settings import Settings
from workflows.access import AccessChangeWorkflow

GOVERNANCE = {
    "version": "2026-11-01",
    "access_committee": "release-board",
    "users": [
        {"name": "alice", "roles": ["release-manager"]},
        {"name": "bob", "roles": ["operator"]},
        *(
            {"name": m, "roles": ["committee-member:release-board"]}
            for m in ("carol", "dave", "erin", "frank")
        ),
        {"name": "grace", "roles": ["viewer"]},
    ],
    "committees": [
        {
            "name": "release-board",
            "quorum": 2,
            "members": [{"user": m} for m in ("carol", "dave", "erin", "frank")],
        }
    ],
}


async def update(live: Live, workflow_id: str, payload: Payload) -> tuple[int, str, str]:
    return await run_process(
        TEMPORAL, "workflow", "update", "execute", "--address", live.address,
        "--workflow-id", workflow_id, "--name", payload.update, *payload.args,
    )  # fmt: skip


def assert_refused(payload: Payload, code: int, stdout: str, stderr: str) -> None:
    assert code != 0, f"{payload!r} was accepted: {stdout[:300]}"
    assert "Error:" in stderr and len(stderr.strip()) > len("Error:"), (
        f"{payload!r}: no reason given: {stderr!r}"
    )
    assert "Workflow Task in failed state" not in stderr, (
        f"{payload!r} broke the workflow: {stderr[:500]}"
    )
    assert "panic" not in stderr, stderr[:500]
    assert "deadline" not in stderr.lower(), (
        f"{payload!r}: no answer in time (a failing workflow task?): {stderr[:500]}"
    )


async def test_bad_release_updates_are_refused_and_change_nothing(
    live: Live, target: RecordingServer
) -> None:
    handle = await park_release(live, target.url)
    before = snapshot(await wait_for(handle, lambda s: True))
    cases = draw_cases(release_payloads(MEMBERS, STARTED_BY), examples(60))
    results = await run_all([update(live, handle.id, p) for p in cases])
    failures = []
    for payload, (code, stdout, stderr) in zip(cases, results, strict=True):
        try:
            assert_refused(payload, code, stdout, stderr)
            TALLY.add("update payloads to a release (temporal CLI)", "refused with a reason")
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures[:10])

    after = snapshot(await wait_for(handle, lambda s: True))
    assert after == before, "a refused update changed the release"

    # still alive: two members approve through the same CLI and the release is promoted
    for member in MEMBERS[:2]:
        code, stdout, stderr = await update(
            live,
            handle.id,
            Payload(
                "approve", ["--input", json.dumps({"stage": "pilot", "user": member})], "valid"
            ),
        )
        assert code == 0, stderr
    final = await wait_for(handle, lambda s: s.state.ended)
    assert final.state.value == "promoted", final.result


@pytest.mark.parametrize(
    ("update_name", "encoding"),
    [("pause", RAW_ENCODINGS[0]), ("signal:record_refusal", RAW_ENCODINGS[1])],
    ids=["pause-update-binary-null", "record_refusal-signal-binary-plain"],
)
async def test_payloads_that_skip_the_json_converter_are_refused(
    live: Live, target: RecordingServer, update_name: str, encoding: list[str]
) -> None:
    handle = await park_release(live, target.url)
    try:
        before = snapshot(await wait_for(handle, lambda s: True))
        if update_name.startswith("signal:"):
            command = ["signal", "--name", update_name.split(":", 1)[1]]
        else:  # returns as soon as the update is accepted or refused
            command = [
                "update",
                "start",
                "--wait-for-stage",
                "accepted",
                "--command-timeout",
                "5s",
                "--name",
                update_name,
            ]
        code, stdout, stderr = await run_process(
            TEMPORAL, "workflow", *command, "--address", live.address, "--workflow-id", handle.id, *encoding,
            timeout=60,
        )  # fmt: skip
        if not update_name.startswith("signal:"):
            assert_refused(Payload(update_name, encoding, "raw encoding"), code, stdout, stderr)
        # the workflow must still answer and still be decidable
        after = snapshot(await wait_for(handle, lambda s: True, timeout=5))
        assert after == before
        for member in MEMBERS[:2]:
            code, _, stderr = await update(
                live,
                handle.id,
                Payload(
                    "approve", ["--input", json.dumps({"stage": "pilot", "user": member})], "valid"
                ),
            )
            assert code == 0, stderr
        assert (
            await wait_for(handle, lambda s: s.state.ended, timeout=30)
        ).state.value == "promoted"
    finally:
        with contextlib.suppress(RPCError):  # a stuck release would fail its task forever
            await handle.terminate("fuzz test cleanup")


@pytest.fixture
def governed(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump(GOVERNANCE))
    monkeypatch.setenv("WARDEN_GOVERNANCE_FILE", str(path))
    return Settings()


@pytest_asyncio.fixture
async def governed_live(
    dev_env: WorkflowEnvironment, governed: Settings, tmp_path: Path
) -> AsyncIterator[Live]:
    async with AsyncExitStack() as stack:
        async with build_worker(dev_env.client, governed, stack=stack):
            yield Live(
                dev_env.client, dev_env.client.service_client.config.target_host, governed, tmp_path
            )


async def test_bad_access_change_updates_are_refused_and_change_nothing(
    governed_live: Live,
) -> None:
    live = governed_live
    request = AccessChangeRequest(
        kind="grant", user="grace", role="operator", reason="joins on-call", requested_by="alice"
    )
    handle = await live.client.start_workflow(
        AccessChangeWorkflow.run,
        request,
        id=f"access-fuzz-{uuid.uuid4().hex[:8]}",
        task_queue=live.settings.task_queue,
    )

    async def status() -> AccessChangeStatus:
        return await handle.query(AccessChangeWorkflow.status)  # type: ignore[attr-defined,no-any-return]

    for _ in range(300):
        if (await status()).members:
            break
        await asyncio.sleep(0.05)
    before = (await status()).model_dump()
    members = ("carol", "dave", "erin", "frank")
    cases = draw_cases(access_payloads(members, "alice", "grace"), examples(40))
    cases += [
        Payload(name, raw, "raw encoding")
        for name in ("approve", "reject")
        for raw in RAW_ENCODINGS
    ]
    results = await run_all([update(live, handle.id, p) for p in cases])
    failures = []
    for payload, (code, stdout, stderr) in zip(cases, results, strict=True):
        try:
            assert_refused(payload, code, stdout, stderr)
            TALLY.add("update payloads to an access change (temporal CLI)", "refused with a reason")
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures[:10])
    after: dict[str, Any] = (await status()).model_dump()
    assert after == before, "a refused update changed the access change"

    for member in ("carol", "erin"):
        code, _, stderr = await update(
            live, handle.id, Payload("approve", ["--input", json.dumps({"user": member})], "valid")
        )
        assert code == 0, stderr
    result = await handle.result()
    assert result.state == "applied", result.message

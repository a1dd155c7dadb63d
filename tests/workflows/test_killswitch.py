"""The operator's kill switch: an audited workflow that changes one flag now."""

from __future__ import annotations

import json
import uuid

import pytest
from temporalio.client import Client, WorkflowFailureError

from warden.flagstore.flagd_file import flag_file, init_flag_file
from warden.models.audit import AuditQuery
from warden.models.flags import FlagOperation, FlagReadRequest
from warden.settings import Settings
from warden.stores.audit import AuditStore
from workflows.flags import FlagChangeWorkflow, FlagReadWorkflow


async def test_disable_switches_the_flag_off_and_is_audited(
    client: Client, settings: Settings, task_queue: str, worker: None
) -> None:
    path = flag_file(settings.flags_path, "production")
    init_flag_file(path, {"chat.channel.feishu": 100, "ai.solutions": 40})
    op = FlagOperation(
        flag="chat.channel.feishu",
        environment="production",
        percent=0,
        user="bob",
        reason="feishu gateway flapping",
        trace_id="trace-ks",
    )
    result = await client.execute_workflow(
        FlagChangeWorkflow.run, op, id=f"flags-{uuid.uuid4().hex[:6]}", task_queue=task_queue
    )
    assert result.changed and result.before and result.before.percent == 100
    document = json.loads(path.read_text())
    assert document["flags"]["chat.channel.feishu"]["defaultVariant"] == "off"
    assert document["flags"]["ai.solutions"]["targeting"]["fractional"][0] == [
        "on",
        40,
    ]  # untouched

    again = await client.execute_workflow(
        FlagChangeWorkflow.run, op, id=f"flags-{uuid.uuid4().hex[:6]}", task_queue=task_queue
    )
    assert not again.changed

    rows = AuditStore(settings.audit_url).query(AuditQuery(traceId="trace-ks"))
    assert [r.action for r in rows] == ["killswitch.requested", "killswitch.applied"] * 2
    assert all(
        r.userId == "bob" and r.entity == "flag:chat.channel.feishu@production" for r in rows
    )
    assert (
        rows[1].details["before"] == 100 and rows[1].details["reason"] == "feishu gateway flapping"
    )

    states = await client.execute_workflow(
        FlagReadWorkflow.run,
        FlagReadRequest(environments=["production"]),
        id=f"read-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
    )
    assert {(s.flag, s.percent) for s in states} == {
        ("chat.channel.feishu", 0),
        ("ai.solutions", 40),
    }


async def test_unknown_flag_is_refused_clearly_and_audited(
    client: Client, settings: Settings, task_queue: str, worker: None
) -> None:
    init_flag_file(flag_file(settings.flags_path, "production"), {"ai.solutions": 0})
    op = FlagOperation(
        flag="chat.channel.wecom",
        environment="production",
        percent=0,
        user="bob",
        reason="typo",
        trace_id="trace-missing",
    )
    with pytest.raises(WorkflowFailureError) as info:
        await client.execute_workflow(
            FlagChangeWorkflow.run, op, id=f"flags-{uuid.uuid4().hex[:6]}", task_queue=task_queue
        )
    assert "does not exist" in str(info.value.cause)
    rows = AuditStore(settings.audit_url).query(AuditQuery(traceId="trace-missing"))
    assert [r.action for r in rows] == ["killswitch.requested", "killswitch.failed"]

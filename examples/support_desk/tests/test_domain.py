"""The desk's domain rules, as an API client sees them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from examples.support_desk.tests.conftest import eventually, set_percent

CONVERSATION = {
    "customerId": "cust-1",
    "channel": "wecom",
    "sla": {"tier": "vip", "firstResponseMinutes": 15},
}


def missing(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize("field", ["customerId", "channel", "sla"])
def test_a_conversation_needs_customer_channel_and_sla(desk: TestClient, field: str) -> None:
    response = desk.post("/conversations", json=missing(CONVERSATION, field))
    assert response.status_code == 422
    assert field in response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/requirements", {"title": "Refund macro", "priority": "high", "owner": "alice"}),
        ("/tasks", {"title": "Write macro", "priority": "low", "owner": "bob"}),
    ],
)
@pytest.mark.parametrize("field", ["priority", "owner"])
def test_requirements_and_tasks_need_priority_and_owner(
    desk: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    assert desk.post(path, json=missing(body, field)).status_code == 422
    assert desk.post(path, json=body).status_code == 201


def test_a_contract_needs_a_status_and_a_terminated_one_stays_terminated(desk: TestClient) -> None:
    body = {"customerId": "cust-1", "title": "Support plan", "status": "active"}
    assert desk.post("/contracts", json=missing(body, "status")).status_code == 422
    contract = desk.post("/contracts", json=body).json()
    assert (
        desk.patch(f"/contracts/{contract['id']}", json={"status": "terminated"}).status_code == 200
    )
    refused = desk.patch(f"/contracts/{contract['id']}", json={"status": "active"})
    assert refused.status_code == 409 and "terminated" in refused.json()["detail"]


def test_values_are_not_coerced_and_unknown_fields_are_refused(desk: TestClient) -> None:
    as_text = {**CONVERSATION, "sla": {"tier": "vip", "firstResponseMinutes": "15"}}
    assert desk.post("/conversations", json=as_text).status_code == 422
    assert desk.post("/conversations", json={**CONVERSATION, "priority": "high"}).status_code == 422
    assert (
        desk.post("/conversations", json={**CONVERSATION, "channel": "telegram"}).status_code == 422
    )
    assert (
        desk.post(
            "/conversations", content=b"\x80abc", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


def test_conversation_lifecycle_with_sla_outcome(desk: TestClient) -> None:
    created = desk.post("/conversations", json=CONVERSATION)
    assert created.status_code == 201
    conversation = created.json()
    assert created.headers["location"] == f"/conversations/{conversation['id']}"
    message = desk.post(
        f"/conversations/{conversation['id']}/messages",
        json={"author": "agent", "text": "Looking into it"},
    )
    assert message.status_code == 201 and message.json()["channel"] == "wecom"
    resolved = desk.post(f"/conversations/{conversation['id']}/resolve").json()
    assert resolved["status"] == "resolved" and resolved["slaMet"] is True
    assert desk.post(f"/conversations/{conversation['id']}/resolve").status_code == 409
    assert (
        desk.post(
            f"/conversations/{conversation['id']}/messages",
            json={"author": "customer", "text": "thanks"},
        ).status_code
        == 409
    )
    profile = desk.get("/customers/cust-1/profile").json()
    assert profile["conversations"] == 1 and profile["channels"] == ["wecom"]

    assert desk.delete(f"/conversations/{conversation['id']}").status_code == 204
    assert desk.get(f"/conversations/{conversation['id']}").status_code == 404
    assert desk.delete(f"/conversations/{conversation['id']}").status_code == 404


def test_writes_are_audited_with_the_callers_trace_id(desk: TestClient) -> None:
    desk.post(
        "/requirements",
        json={"title": "t", "priority": "low", "owner": "carol"},
        headers={"X-Trace-Id": "tr-9"},
    )
    events = desk.get("/audit/events", params={"limit": 5}).json()["items"]
    assert events[0]["action"] == "requirement.created" and events[0]["traceId"] == "tr-9"


def test_a_flag_closes_a_channel_for_new_conversations(desk: TestClient, flags_file: Path) -> None:
    assert (
        desk.post("/conversations", json={**CONVERSATION, "channel": "feishu"}).status_code == 201
    )

    set_percent(flags_file, "chat.channel.feishu", 0)
    assert eventually(
        lambda: (
            desk.post("/conversations", json={**CONVERSATION, "channel": "feishu"}).status_code
            == 409
        )
    ), "the closed channel was never refused"
    # Channels without a flag stay open.
    assert desk.post("/conversations", json=CONVERSATION).status_code == 201


def test_priority_applies_only_with_priority_creation_on(
    desk: TestClient, flags_file: Path
) -> None:
    body = {"title": "Escalation path", "priority": "urgent", "owner": "dave"}
    off = desk.post("/requirements", json=body).json()
    assert off["priority"] == "medium" and off["priorityApplied"] is False
    set_percent(flags_file, "requirements.priorityCreation", 100)
    assert eventually(lambda: desk.post("/requirements", json=body).json()["priorityApplied"])
    assert desk.post("/requirements", json=body).json()["priority"] == "urgent"


def test_the_openapi_document_hides_operational_endpoints(desk: TestClient) -> None:
    paths = desk.get("/openapi.json").json()["paths"]
    assert "/conversations" in paths and "/solutions/suggest" in paths
    assert not [p for p in paths if p.startswith(("/metrics", "/_sim"))]

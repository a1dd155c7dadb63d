"""POST /audit/events from other systems, the query filters, and the CSV export."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from tests.api.conftest import Governance, metric_value
from warden.api import create_app
from warden.settings import Settings


@pytest_asyncio.fixture
async def http(
    settings: Settings, governance: Governance, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The audit endpoints need no Temporal: the app in this process, over ASGI."""
    monkeypatch.setenv("WARDEN_GOVERNANCE_FILE", str(governance.path))
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warden.test") as client:
            yield client


def event(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "eventId": str(uuid.uuid4()),
        "userId": "zoe",
        "action": "ticket.escalated",
        "entity": "ticket:4711",
        "result": "ok",
        "timestamp": "2026-03-01T10:00:00Z",
        "releaseId": "release-support-desk-1.4.0",
        "traceId": "trace-helpdesk-1",
        "details": {"channel": "feishu"},
    }
    body.update(overrides)
    return body


async def test_invalid_events_are_refused_naming_the_field(
    http: httpx.AsyncClient, governance: Governance
) -> None:
    headers = governance.headers("oscar")
    cases = {
        "userId": event(userId=""),
        "action": event(action="has spaces"),
        "timestamp": event(timestamp="2026-03-01T10:00:00"),
        "eventId": event(eventId="not-a-uuid"),
        "colour": event(colour="blue"),
    }
    for field, body in cases.items():
        response = await http.post("/audit/events", json=body, headers=headers)
        assert response.status_code == 422, field
        error = response.json()["error"]
        assert error["type"] == "ValidationError"
        assert [f["field"] for f in error["fields"]] == [field]
        assert field in error["message"]
    missing = {k: v for k, v in event().items() if k != "entity"}
    response = await http.post("/audit/events", json=missing, headers=headers)
    assert response.json()["error"]["fields"] == [
        {"location": "body", "field": "entity", "message": "Field required"}
    ]
    not_json = await http.post(
        "/audit/events", content=b"{oops", headers={**headers, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert not_json.json()["error"]["fields"][0]["field"] == "(body)"
    stored = await http.get("/audit/events", params={"action": "ticket.escalated"}, headers=headers)
    assert stored.json()["events"] == []


async def test_event_id_is_the_idempotency_key(
    http: httpx.AsyncClient, governance: Governance
) -> None:
    body = event()
    first = await http.post(
        "/audit/events",
        json=body,
        headers=governance.headers("oscar", **{"X-Request-Id": "helpdesk-42"}),
    )
    assert first.status_code == 201, first.text
    stored = first.json()
    assert stored["eventId"] == body["eventId"]
    assert stored["source"] == "api"
    assert stored["userId"] == "zoe"  # posted on zoe's behalf ...
    assert stored["details"]["postedBy"] == "oscar"  # ... by oscar, whatever the body says
    assert stored["details"]["requestId"] == "helpdesk-42"

    again = await http.post(
        "/audit/events", json={**body, "result": "changed"}, headers=governance.headers("oscar")
    )
    assert again.status_code == 200
    assert again.json() == stored  # the stored row, unchanged

    spoofed = await http.post(
        "/audit/events",
        json=event(details={"postedBy": "carol"}),
        headers=governance.headers("oscar"),
    )
    assert spoofed.json()["details"]["postedBy"] == "oscar"

    rows = await http.get(
        "/audit/events", params={"userId": "zoe"}, headers=governance.headers("victor")
    )
    assert [r["eventId"] for r in rows.json()["events"]].count(body["eventId"]) == 1
    metrics = (await http.get("/metrics")).text
    assert metric_value(metrics, "warden_api_audit_events_accepted_total", result="created") == 2
    assert metric_value(metrics, "warden_api_audit_events_accepted_total", result="duplicate") == 1


async def test_viewers_read_but_do_not_write(
    http: httpx.AsyncClient, governance: Governance
) -> None:
    refused = await http.post("/audit/events", json=event(), headers=governance.headers("victor"))
    assert refused.status_code == 403
    bad_token = await http.get("/audit/events", headers={"Authorization": "Bearer wdn_nope"})
    assert bad_token.status_code == 401
    rows = (
        await http.get(
            "/audit/events", params={"action": "auth.refused"}, headers=governance.headers("root")
        )
    ).json()["events"]
    assert [(r["userId"], r["result"], r["details"]["permission"]) for r in rows] == [
        ("victor", "forbidden", "audit.write"),
        ("anonymous", "unauthenticated", "audit.read"),
    ]


async def test_filters_and_csv_round_trip(http: httpx.AsyncClient, governance: Governance) -> None:
    writer = governance.headers("oscar")
    base = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    posted = []
    for i, (user, action, release, trace) in enumerate(
        [
            ("zoe", "ticket.escalated", "release-a-1", "t-1"),
            ("zoe", "ticket.closed", "release-a-1", "t-1"),
            ("yan", "ticket.escalated", "release-b-2", "t-2"),
            ("yan", "sla.breached", "release-b-2", "t-2"),
        ]
    ):
        body = event(
            userId=user,
            action=action,
            releaseId=release,
            traceId=trace,
            timestamp=(base + timedelta(minutes=i)).isoformat(),
            details={"n": i, "note": 'comma, "quotes" and 中文'},
        )
        response = await http.post("/audit/events", json=body, headers=writer)
        assert response.status_code == 201
        posted.append(response.json())

    reader = governance.headers("victor")

    async def ids(**params: str | int) -> list[str]:
        response = await http.get("/audit/events", params=params, headers=reader)
        assert response.status_code == 200, response.text
        return [
            r["eventId"]
            for r in response.json()["events"]
            if r["source"] == "api" and r["userId"] != "anonymous"
        ]

    every = [p["eventId"] for p in posted]
    assert await ids(releaseId="release-b-2") == every[2:]
    assert await ids(userId="zoe") == every[:2]
    assert await ids(action="ticket.escalated") == [every[0], every[2]]
    assert await ids(traceId="t-1") == every[:2]
    assert await ids(since="2026-03-01T10:01:00Z", until="2026-03-01T10:02:00Z") == every[1:3]
    assert (
        await ids(since="2026-03-01T11:01:00+01:00") == every[1:]
    )  # the same instant, another zone
    assert await ids(userId="yan", limit=1) == every[2:3]
    bad = await http.get("/audit/events", params={"limit": 0}, headers=reader)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "limit"
    bad_time = await http.get("/audit/events", params={"since": "yesterday"}, headers=reader)
    assert bad_time.status_code == 422 and bad_time.json()["error"]["fields"][0]["field"] == "since"

    as_json = (await http.get("/audit/events", params={"userId": "yan"}, headers=reader)).json()[
        "events"
    ]
    exported = await http.get("/audit/events.csv", params={"userId": "yan"}, headers=reader)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == len(as_json) == 2
    for row, original in zip(rows, as_json, strict=True):
        assert row["eventId"] == original["eventId"]
        assert datetime.fromisoformat(row["timestamp"]) == datetime.fromisoformat(
            original["timestamp"]
        )
        for key in ("userId", "action", "entity", "result", "releaseId", "traceId", "source"):
            assert row[key] == (original[key] or ""), key
        assert json.loads(row["details"]) == original["details"]


async def test_since_and_until_take_the_forms_the_cli_takes(
    http: httpx.AsyncClient, governance: Governance
) -> None:
    """`since=2026-03-01` works as it does for `warden audit list --since 2026-03-01`; a date alone
    as `until` covers that whole day; the parser is the CLI's (warden.models.audit.parse_time)."""
    writer, reader = governance.headers("oscar"), governance.headers("victor")
    posted = []
    for stamp in ("2026-02-28T23:59:59Z", "2026-03-01T00:00:00Z", "2026-03-01T23:30:00Z"):
        response = await http.post(
            "/audit/events", json=event(userId="dates", timestamp=stamp), headers=writer
        )
        assert response.status_code == 201
        posted.append(response.json()["eventId"])

    async def ids(path: str = "/audit/events", **params: str) -> list[str]:
        response = await http.get(path, params={"userId": "dates", **params}, headers=reader)
        assert response.status_code == 200, response.text
        if path.endswith(".csv"):
            return [row["eventId"] for row in csv.DictReader(io.StringIO(response.text))]
        return [e["eventId"] for e in response.json()["events"]]

    assert await ids(since="2026-03-01") == posted[1:]
    assert await ids(until="2026-02-28") == posted[:1]  # all of February 28th, no more
    assert await ids(since="2026-03-01", until="2026-03-01") == posted[1:]
    assert await ids(since="2026-03-01 00:30") == posted[2:]  # a space, no zone: UTC
    assert await ids(since="2026-03-01T01:30:00+01:00") == posted[2:]
    assert await ids(since="2026-03-01T01:30 01:00") == posted[2:]  # '+' sent unencoded
    assert await ids(since="2026-03-01 23:30:00 UTC") == posted[2:]  # as `warden` prints times
    assert await ids("/audit/events.csv", since="2026-03-01") == posted[1:]
    for bad in ("2026-02-30", "yesterday", "0.5", "20260301"):
        response = await http.get("/audit/events", params={"since": bad}, headers=reader)
        assert response.status_code == 422, bad
        error = response.json()["error"]
        assert error["fields"][0]["field"] == "since" and "2026-11-01" in error["message"]

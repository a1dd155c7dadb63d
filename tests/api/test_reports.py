"""GET /reports/governance-review and /releases/{id}/reports/{kind}: JSON, Markdown or HTML,
permissions, and readable refusals; the app in this process over ASGI, its audit store real."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio

from tests.api.conftest import Governance
from warden.api import create_app
from warden.models.audit import AuditEvent
from warden.settings import Settings
from warden.stores.audit import AuditStore


@pytest_asyncio.fixture
async def http(
    settings: Settings, governance: Governance, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("WARDEN_GOVERNANCE_FILE", str(governance.path))
    store = AuditStore(settings.audit_url)
    store.write(
        [
            AuditEvent(
                eventId=str(uuid.uuid4()),
                userId=user,
                action=action,
                entity="x",
                result=result,
                timestamp=datetime(2026, 11, 3, 10, minute, tzinfo=UTC),
            )
            for minute, (user, action, result) in enumerate(
                [
                    ("warden", "contract.result", "passed"),
                    ("warden", "contract.result", "failed"),
                    ("bob", "access.requested", "waiting"),
                ]
            )
        ]
    )
    store.close()
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warden.test") as client:
            yield client


async def test_the_governance_review_in_each_format(
    http: httpx.AsyncClient, governance: Governance
) -> None:
    headers = governance.headers("root")
    answer = await http.get("/reports/governance-review?month=2026-11", headers=headers)
    assert answer.status_code == 200, answer.text
    review = answer.json()
    assert (review["events"], review["contract_runs"], review["contract_passed"]) == (3, 2, 1)
    assert [p["actor"] for p in review["permission_changes"]] == ["bob"]
    assert review["governance_version"] == "1" and review["governance_signed_off"] is False
    md = await http.get("/reports/governance-review?month=2026-11&format=md", headers=headers)
    assert md.headers["content-type"].startswith("text/markdown")
    assert "# Governance review 2026-11" in md.text and "NOT signed off" in md.text
    page = await http.get("/reports/governance-review?month=2026-11&format=html", headers=headers)
    assert page.headers["content-type"].startswith("text/html") and "<svg" in page.text


async def test_refusals_are_4xx_with_a_json_body(
    http: httpx.AsyncClient, governance: Governance
) -> None:
    bad = await http.get(
        "/reports/governance-review?month=2026-13", headers=governance.headers("root")
    )
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "month"
    anonymous = await http.get("/reports/governance-review?month=2026-11")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "Unauthenticated"
    unknown = await http.get(
        "/releases/release-x-1/reports/tea-leaves", headers=governance.headers("root")
    )
    assert unknown.status_code == 422

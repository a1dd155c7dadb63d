"""Who the caller is: a claimed name on one dev machine, or a token with the file's roles plus
approved access grants; the governance file is read again when it changes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import Governance, api_plan, wait_for_status, waiting_at
from tests.helpers import RecordingServer
from warden.api import create_app
from warden.models.governance import AccessGrant
from warden.settings import Settings
from warden.stores.governance import GovernanceStore


async def _client(settings: Settings, env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://warden.test", timeout=60
        ) as client:
            yield client


def as_user(name: str) -> dict[str, str]:
    return {"X-Warden-User": name}


async def test_dev_identity_acts_and_is_marked(
    dev_env: WorkflowEnvironment, settings: Settings, worker: None, target: RecordingServer
) -> None:
    assert settings.embedded and settings.env == "dev" and settings.governance_file is None
    plan = api_plan(target.url, f"3.0.{uuid.uuid4().hex[:8]}")
    release_id = f"release-support-desk-{plan['version']}"
    async for http in _client(settings, dev_env):
        assert (await http.post("/releases", json={"plan": plan})).status_code == 401
        token = await http.post(
            "/releases", json={"plan": plan}, headers={"Authorization": "Bearer wdn_x"}
        )
        assert token.status_code == 401
        assert "governance file" in token.json()["error"]["message"]
        odd = await http.post("/releases", json={"plan": plan}, headers=as_user("not a name"))
        assert odd.status_code == 401

        started = await http.post("/releases", json={"plan": plan}, headers=as_user("alice"))
        assert started.status_code == 201, started.text
        assert started.json()["dev_identity"] is True
        await wait_for_status(http, release_id, as_user("erin"), waiting_at("pilot"))
        for user in ("carol", "dave"):
            approved = await http.post(
                f"/releases/{release_id}/approve", json={"stage": "pilot"}, headers=as_user(user)
            )
            assert approved.status_code == 200, approved.text
        final = await wait_for_status(
            http, release_id, as_user("erin"), lambda s: s["state"] == "promoted"
        )
        pilot = next(s for s in final["stages"] if s["name"] == "pilot")
        assert {d["user"]: d["dev_identity"] for d in pilot["signoff"]["decisions"]} == {
            "carol": True,
            "dave": True,
        }

        rows = (
            await http.get(
                "/audit/events", params={"releaseId": release_id}, headers=as_user("erin")
            )
        ).json()
        by_action = {r["action"]: r for r in rows["events"]}
        assert by_action["release.started"]["details"]["devIdentity"] is True
        assert by_action["signoff.approval"]["details"]["devIdentity"] is True


async def test_dev_identity_needs_dev_one_machine_and_no_governance_file(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    governance: Governance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARDEN_GOVERNANCE_FILE", str(governance.path))
    async for http in _client(Settings(), dev_env):
        claimed = await http.get("/releases", headers=as_user("root"))
        assert claimed.status_code == 401
        assert (await http.get("/releases", headers=governance.headers("root"))).status_code == 200
    monkeypatch.delenv("WARDEN_GOVERNANCE_FILE")
    monkeypatch.setenv("WARDEN_ENV", "staging")
    async for http in _client(Settings(), dev_env):
        refused = await http.get("/releases", headers=as_user("root"))
        assert refused.status_code == 401
        assert "no governance file" in refused.json()["error"]["message"]
    monkeypatch.setenv("WARDEN_ENV", "dev")
    monkeypatch.setenv("WARDEN_TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    async for http in _client(Settings(), dev_env):
        assert (await http.get("/releases", headers=as_user("root"))).status_code == 401


async def test_governance_file_changes_apply_without_restart(
    dev_env: WorkflowEnvironment, governance: Governance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_GOVERNANCE_FILE", str(governance.path))
    async for http in _client(Settings(), dev_env):
        assert (
            await http.get("/audit/events", headers=governance.headers("victor"))
        ).status_code == 200
        refused = await http.post(
            "/releases", json={"plan": {}}, headers=governance.headers("victor")
        )
        assert refused.status_code == 403
        text = governance.path.read_text()
        governance.path.write_text(text.replace("- viewer", "- release-manager\n  - viewer"))
        started = await http.post(
            "/releases", json={"plan": {}}, headers=governance.headers("victor")
        )
        assert started.status_code == 422  # allowed to start now; the empty plan is what is refused
        governance.path.write_text("version: [broken")
        broken = await http.get("/audit/events", headers=governance.headers("victor"))
        assert broken.status_code == 503
        assert broken.json()["error"]["type"] == "GovernanceUnavailable"


async def test_approved_access_grants_add_to_the_file_roles(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    governance: Governance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARDEN_GOVERNANCE_FILE", str(governance.path))
    async for http in _client(Settings(), dev_env):
        event = {"userId": "victor", "action": "note.added", "entity": "release:x", "result": "ok"}
        assert (
            await http.post("/audit/events", json=event, headers=governance.headers("victor"))
        ).status_code == 403
        store = GovernanceStore(settings.audit_url)
        store.apply_grant(
            AccessGrant(
                change_id=f"change-{uuid.uuid4().hex[:8]}",
                user="victor",
                role="operator",
                requested_by="victor",
                approved_by=["carol", "dave"],
                reason="on call this week",
                applied_at=datetime.now(UTC),
            )
        )
        store.close()
        assert (
            await http.post("/audit/events", json=event, headers=governance.headers("victor"))
        ).status_code == 201

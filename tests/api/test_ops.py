"""Dev and operational endpoints: off unless switched on, whitelisted by user and network, audited."""

from __future__ import annotations

import json
import uuid
from contextlib import AsyncExitStack
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import (
    ApiFactory,
    Governance,
    api_plan,
    metric_value,
    wait_for_status,
    waiting_at,
)
from tests.helpers import RecordingServer
from warden.flagstore.flagd_file import flag_file, init_flag_file
from warden.models.release import ReleaseStatus
from warden.runtime.worker import build_worker
from warden.services.flags import captured_from_history, captured_from_status
from warden.settings import Settings


async def _denials(
    http: httpx.AsyncClient, governance: Governance, action: str
) -> list[dict[str, Any]]:
    response = await http.get(
        "/audit/events", params={"action": action}, headers=governance.headers("root")
    )
    assert response.status_code == 200
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def test_switched_off_endpoints_answer_404_and_are_audited(
    serve_api: ApiFactory, governance: Governance
) -> None:
    # Production: dev and ops endpoints are off unless switched on explicitly.
    api = serve_api(GOVERNANCE_FILE=str(governance.path), ENV="production")
    async with api.client() as http:
        task_queue = await http.get("/ops/task-queue", headers=governance.headers("root"))
        assert task_queue.status_code == 404
        assert task_queue.json()["error"]["type"] == "NotFound"
        seed = await http.post("/dev/seed", headers=governance.headers("alice"))
        assert seed.status_code == 404
        anonymous = await http.post("/ops/releases/release-x-1/force-restore", json={"reason": "x"})
        assert anonymous.status_code == 404  # no hint that the endpoint exists
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert not [p for p in paths if p.startswith(("/ops", "/dev"))]
        assert "/releases" in paths

        ops_rows = await _denials(http, governance, "ops.denied")
        assert [(r["userId"], r["result"], r["details"]["endpoint"]) for r in ops_rows] == [
            ("root", "disabled", "task-queue"),
            ("anonymous", "disabled", "force-restore"),
        ]
        assert ops_rows[1]["releaseId"] == "release-x-1"
        dev_rows = await _denials(http, governance, "dev.denied")
        assert [(r["userId"], r["result"]) for r in dev_rows] == [("alice", "disabled")]
        metrics = (await http.get("/metrics")).text
        assert (
            metric_value(
                metrics, "warden_ops_endpoint_calls_total", endpoint="task-queue", result="disabled"
            )
            == 1
        )
        assert (
            metric_value(
                metrics, "warden_ops_endpoint_calls_total", endpoint="seed", result="disabled"
            )
            == 1
        )

    # Explicitly off in dev, where they would be on by default.
    off = serve_api(GOVERNANCE_FILE=str(governance.path), OPS_ENDPOINTS="false")
    async with off.client() as http:
        assert (
            await http.get("/ops/task-queue", headers=governance.headers("root"))
        ).status_code == 404
        assert (await http.get("/healthz")).json()["ops_endpoints"] is False


async def test_whitelists_of_users_and_networks(
    serve_api: ApiFactory, governance: Governance, worker: None
) -> None:
    by_user = serve_api(
        GOVERNANCE_FILE=str(governance.path),
        ENV="production",
        OPS_ENDPOINTS="true",
        OPS_ALLOW_USERS="olga",
    )
    async with by_user.client() as http:
        viewer = await http.get("/ops/task-queue", headers=governance.headers("victor"))
        assert viewer.status_code == 403 and viewer.json()["error"]["type"] == "Forbidden"
        outsider = await http.get("/ops/task-queue", headers=governance.headers("oscar"))
        assert outsider.status_code == 403
        assert outsider.json()["error"]["type"] == "NotAllowed"
        assert "WARDEN_OPS_ALLOW_USERS" in outsider.json()["error"]["message"]
        inside = await http.get("/ops/task-queue", headers=governance.headers("olga"))
        assert inside.status_code == 200, inside.text
        report = inside.json()
        assert report["task_queue"] == Settings().task_queue
        assert report["workflow"]["pollers"], "the test's worker polls this queue"
        assert "/ops/task-queue" in (await http.get("/openapi.json")).json()["paths"]

        rows = await _denials(http, governance, "ops.denied")
        assert [(r["userId"], r["result"]) for r in rows] == [("oscar", "not_allowed")]
        calls = await _denials(http, governance, "ops.task_queue")
        assert [(r["userId"], r["result"]) for r in calls] == [("olga", "ok")]
        api_denied = await _denials(http, governance, "auth.refused")
        assert [(r["userId"], r["details"]["permission"]) for r in api_denied] == [
            ("victor", "ops.use")
        ]
        metrics = (await http.get("/metrics")).text
        assert (
            metric_value(
                metrics, "warden_ops_endpoint_calls_total", endpoint="task-queue", result="denied"
            )
            == 2
        )
        assert (
            metric_value(
                metrics, "warden_ops_endpoint_calls_total", endpoint="task-queue", result="ok"
            )
            == 1
        )

    elsewhere = serve_api(
        GOVERNANCE_FILE=str(governance.path), OPS_ALLOW_CIDRS="10.0.0.0/8,192.168.0.0/16"
    )
    async with elsewhere.client() as http:
        outside = await http.get("/ops/task-queue", headers=governance.headers("olga"))
        assert outside.status_code == 403
        assert "127.0.0.1 is not in WARDEN_OPS_ALLOW_CIDRS" in outside.json()["error"]["message"]
        rows = await _denials(http, governance, "ops.denied")
        assert rows[-1]["details"]["client"] == "127.0.0.1"

    loopback = serve_api(
        GOVERNANCE_FILE=str(governance.path),
        OPS_ALLOW_CIDRS="10.0.0.0/8,127.0.0.1/32",
        OPS_ALLOW_USERS="olga,oscar",
    )
    async with loopback.client() as http:
        assert (
            await http.get("/ops/task-queue", headers=governance.headers("oscar"))
        ).status_code == 200


async def _status(
    http: httpx.AsyncClient, release_id: str, governance: Governance
) -> dict[str, Any]:
    response = await http.get(f"/releases/{release_id}", headers=governance.headers("victor"))
    assert response.status_code == 200
    status: dict[str, Any] = response.json()
    return status


async def test_force_restore_puts_the_flags_back(
    serve_api: ApiFactory,
    governance: Governance,
    worker: None,
    target: RecordingServer,
    settings: Settings,
    dev_env: WorkflowEnvironment,
) -> None:
    dev_flags = flag_file(settings.flags_path, "dev")
    init_flag_file(dev_flags, {"ai.solutions": 0, "chat.channel.feishu": 100})
    before = dev_flags.read_bytes()
    plan = api_plan(target.url, f"2.0.{uuid.uuid4().hex[:8]}", flags=["ai.solutions"])
    plan["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    release_id = f"release-support-desk-{plan['version']}"
    api = serve_api(GOVERNANCE_FILE=str(governance.path))
    async with api.client() as http:
        started = await http.post(
            "/releases", json={"plan": plan}, headers=governance.headers("alice")
        )
        assert started.status_code == 201, started.text
        status = await wait_for_status(
            http, release_id, governance.headers("victor"), waiting_at("pilot")
        )
        assert status["flags_changed"] == ["ai.solutions@dev"]
        assert json.loads(dev_flags.read_text())["flags"]["ai.solutions"]["defaultVariant"] == "on"

        restore = {"reason": "customer complaints in dev"}
        busy = await http.post(
            f"/ops/releases/{release_id}/force-restore",
            json=restore,
            headers=governance.headers("oscar"),
        )
        assert busy.status_code == 409 and busy.json()["error"]["type"] == "ReleaseActive"

        assert (
            await http.post(f"/releases/{release_id}/pause", headers=governance.headers("oscar"))
        ).status_code == 200
        restored = await http.post(
            f"/ops/releases/{release_id}/force-restore",
            json=restore,
            headers=governance.headers("oscar", **{"X-Request-Id": "restore-1"}),
        )
        assert restored.status_code == 200, restored.text
        body = restored.json()
        assert body["verified"] is True
        assert body["flags"] == ["ai.solutions"] and body["environments"] == ["dev"]
        assert body["source"] == "status"
        assert dev_flags.read_bytes() == before  # exactly as captured, the other flag untouched

        # Without a worker to answer the status query, the same state is read from the history.
        from_status = captured_from_status(
            ReleaseStatus.model_validate(await _status(http, release_id, governance))
        )
        from_history = await captured_from_history(dev_env.client, release_id)
        assert from_history.changed == from_status.changed == [("dev", "ai.solutions")]
        assert from_history.snapshots == from_status.snapshots

        unknown = await http.post(
            "/ops/releases/release-none-0.0.1/force-restore",
            json=restore,
            headers=governance.headers("oscar"),
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "UnknownRelease"

        rows = (
            await http.get(
                "/audit/events",
                params={"releaseId": release_id},
                headers=governance.headers("root"),
            )
        ).json()["events"]
        restores = [r for r in rows if r["action"] == "ops.force_restore"]
        assert [(r["userId"], r["result"]) for r in restores] == [
            ("oscar", "failed"),
            ("oscar", "restored"),
        ]
        assert restores[1]["details"]["requestId"] == "restore-1"
        assert restores[1]["details"]["reason"] == "customer complaints in dev"
        assert restores[1]["source"] == "api"
        metrics = (await http.get("/metrics")).text
        assert (
            metric_value(
                metrics, "warden_api_rollbacks_total", trigger="force-restore", result="verified"
            )
            == 1
        )
        assert (
            metric_value(
                metrics, "warden_ops_endpoint_calls_total", endpoint="force-restore", result="error"
            )
            == 2
        )
        assert (
            metric_value(
                metrics, "warden_ops_endpoint_calls_total", endpoint="force-restore", result="ok"
            )
            == 1
        )

        aborted = await http.post(
            f"/releases/{release_id}/abort",
            json={"reason": "restored by hand"},
            headers=governance.headers("oscar"),
        )
        assert aborted.status_code == 200
        await wait_for_status(
            http, release_id, governance.headers("victor"), lambda s: s["state"] == "aborted"
        )
        assert dev_flags.read_bytes() == before


async def test_dev_seed_starts_the_sample_release(
    serve_api: ApiFactory,
    governance: Governance,
    worker: None,
    target: RecordingServer,
    settings: Settings,
) -> None:
    api = serve_api(GOVERNANCE_FILE=str(governance.path))
    async with api.client() as http:
        seeded = await http.post(
            "/dev/seed", json={"base_url": target.url}, headers=governance.headers("alice")
        )
        assert seeded.status_code == 201, seeded.text
        release_id = seeded.json()["release_id"]
        assert release_id.startswith("release-support-desk-0.0.0-seed.")
        status = await wait_for_status(
            http,
            release_id,
            governance.headers("victor"),
            lambda s: s["stages"][0]["state"] != "pending",
        )
        assert [s["name"] for s in status["stages"]] == ["dev", "staging", "pilot", "production"]
        assert {s["base_url"] for s in status["stages"]} == {target.url}
        assert flag_file(settings.flags_path, "pilot").exists()
        rows = await _denials(http, governance, "dev.seed")
        assert [(r["userId"], r["result"], r["releaseId"]) for r in rows] == [
            ("alice", "started", release_id)
        ]
        await http.post(
            f"/releases/{release_id}/abort",
            json={"reason": "seeded"},
            headers=governance.headers("oscar"),
        )


async def test_force_restore_without_a_worker_reads_the_history(
    serve_api: ApiFactory,
    governance: Governance,
    target: RecordingServer,
    settings: Settings,
    dev_env: WorkflowEnvironment,
) -> None:
    """The emergency path: the worker is gone, the flags are still open; restore them anyway."""
    pilot_flags = flag_file(settings.flags_path, "pilot")
    init_flag_file(pilot_flags, {"ai.solutions": 0})
    before = pilot_flags.read_bytes()
    plan = api_plan(target.url, f"4.0.{uuid.uuid4().hex[:8]}", flags=["ai.solutions"])
    pilot = plan["stages"][2]
    pilot["flags"] = [{"flag": "ai.solutions", "steps": [5, 25]}]  # opens before the sign-off
    release_id = f"release-support-desk-{plan['version']}"
    api = serve_api(GOVERNANCE_FILE=str(governance.path))
    async with api.client() as http:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(build_worker(dev_env.client, settings, stack=stack))
            started = await http.post(
                "/releases", json={"plan": plan}, headers=governance.headers("alice")
            )
            assert started.status_code == 201, started.text
            await wait_for_status(
                http, release_id, governance.headers("victor"), waiting_at("pilot")
            )
        # No worker polls any more: the status query cannot be answered.
        assert json.loads(pilot_flags.read_text())["flags"]["ai.solutions"]["targeting"]
        restored = await http.post(
            f"/ops/releases/{release_id}/force-restore",
            json={"reason": "worker lost during pilot"},
            headers=governance.headers("oscar"),
        )
        assert restored.status_code == 200, restored.text
        assert restored.json()["source"] == "history"
        assert restored.json()["verified"] is True
        assert pilot_flags.read_bytes() == before

"""A release through the HTTP API, end to end: start, evidence, refusals, approvals, audit trail."""

from __future__ import annotations

import uuid

from tests.api.conftest import (
    ApiFactory,
    Governance,
    api_plan,
    metric_value,
    wait_for_status,
    waiting_at,
)
from tests.helpers import RecordingServer


def _version() -> str:
    return f"1.0.{uuid.uuid4().hex[:8]}"


async def test_release_promoted_through_the_api(
    serve_api: ApiFactory, governance: Governance, worker: None, target: RecordingServer
) -> None:
    api = serve_api(GOVERNANCE_FILE=str(governance.path))
    plan = api_plan(target.url, _version())
    release_id = f"release-support-desk-{plan['version']}"
    async with api.client() as http:
        # Nobody gets in without a token; a viewer may look but not start.
        anonymous = await http.post("/releases", json={"plan": plan})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["type"] == "Unauthenticated"
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        viewer = await http.post(
            "/releases", json={"plan": plan}, headers=governance.headers("victor")
        )
        assert viewer.status_code == 403
        assert viewer.json()["error"]["type"] == "Forbidden"
        assert "release.start" in viewer.json()["error"]["message"]

        started = await http.post(
            "/releases",
            json={"plan": plan},
            headers=governance.headers(
                "alice", **{"X-Request-Id": "req-start-1", "X-Trace-Id": "trace-api-1"}
            ),
        )
        assert started.status_code == 201, started.text
        assert started.headers["X-Request-Id"] == "req-start-1"
        assert started.headers["X-Trace-Id"] == "trace-api-1"
        assert started.headers["Location"] == f"/releases/{release_id}"
        body = started.json()
        assert body["release_id"] == release_id
        assert body["started_by"] == "alice"
        assert body["trace_id"] == "trace-api-1"

        again = await http.post(
            "/releases", json={"plan": plan}, headers=governance.headers("alice")
        )
        assert again.status_code == 409
        assert again.json()["error"]["type"] == "ReleaseExists"

        viewer_headers = governance.headers("victor")
        status = await wait_for_status(http, release_id, viewer_headers, waiting_at("pilot"))
        # What an approver looks at: the checklist of every stage so far, with its evidence.
        stages = {s["name"]: s for s in status["stages"]}
        assert [i["key"] for i in stages["dev"]["checklist"]] == [
            "contract_tests",
            "flags_present",
            "thresholds_normal",
            "signoff",
            "rollback_plan",
        ]
        assert stages["dev"]["state"] == "promoted"
        assert stages["dev"]["smoke"]["passed"] is True
        assert stages["pilot"]["signoff"]["members"] == ["carol", "dave", "alice"]
        assert status["trace_id"] == "trace-api-1"

        listed = await http.get("/releases", params={"status": "running"}, headers=viewer_headers)
        assert listed.status_code == 200
        assert release_id in [r["release_id"] for r in listed.json()["releases"]]

        # Separation of duties: alice sits on the board but started this release.
        own = await http.post(
            f"/releases/{release_id}/approve",
            json={"stage": "pilot", "comment": "lgtm"},
            headers=governance.headers("alice", **{"X-Request-Id": "req-self"}),
        )
        assert own.status_code == 409
        assert own.json()["error"]["type"] == "SelfApproval"
        assert "separation of duties" in own.json()["error"]["message"]

        # The body cannot name someone else: there is no `user` field to fill in.
        impersonating = await http.post(
            f"/releases/{release_id}/approve",
            json={"stage": "pilot", "user": "carol"},
            headers=governance.headers("alice"),
        )
        assert impersonating.status_code == 422
        assert impersonating.json()["error"]["fields"][0]["field"] == "user"

        not_allowed = await http.post(
            f"/releases/{release_id}/approve",
            json={"stage": "pilot"},
            headers=governance.headers("oscar"),
        )
        assert not_allowed.status_code == 403

        first = await http.post(
            f"/releases/{release_id}/approve",
            json={"stage": "pilot", "comment": "metrics within thresholds"},
            headers=governance.headers("carol", **{"X-Request-Id": "req-carol"}),
        )
        assert first.status_code == 200, first.text
        assert first.json()["approvals"] == 1 and first.json()["quorum"] == 2
        second = await http.post(
            f"/releases/{release_id}/approve",
            json={"stage": "pilot", "comment": "audit reviewed"},
            headers=governance.headers("dave", **{"X-Request-Id": "req-dave"}),
        )
        assert second.status_code == 200, second.text

        final = await wait_for_status(
            http, release_id, viewer_headers, lambda s: s["state"] == "promoted"
        )
        assert final["result"]["promoted_stages"] == ["dev", "staging", "pilot", "production"]
        decisions = {
            d["user"]: d
            for d in {s["name"]: s for s in final["stages"]}["pilot"]["signoff"]["decisions"]
        }
        assert set(decisions) == {"carol", "dave"}
        assert decisions["carol"]["dev_identity"] is False

        # The audit trail: every row of the release carries the trace id sent on start.
        audit = await http.get(
            "/audit/events", params={"releaseId": release_id}, headers=viewer_headers
        )
        assert audit.status_code == 200
        rows = audit.json()["events"]
        assert rows and {r["traceId"] for r in rows if r["source"] == "workflow"} == {"trace-api-1"}
        approvals = [r for r in rows if r["action"] == "signoff.approval"]
        assert {(r["userId"], r["details"]["requestId"]) for r in approvals} == {
            ("carol", "req-carol"),
            ("dave", "req-dave"),
        }
        refused = [r for r in rows if r["action"] == "approve.refused"]
        assert [(r["userId"], r["details"]["requestId"]) for r in refused] == [
            ("alice", "req-self")
        ]
        assert "separation of duties" in refused[0]["details"]["reason"]
        by_trace = await http.get(
            "/audit/events", params={"traceId": "trace-api-1"}, headers=viewer_headers
        )
        assert {r["eventId"] for r in by_trace.json()["events"]} >= {
            r["eventId"] for r in rows if r["source"] == "workflow"
        }

        # The viewer's refused start is on record, with who and why.
        denied = await http.get(
            "/audit/events",
            params={"action": "auth.refused", "userId": "victor"},
            headers=viewer_headers,
        )
        assert [(r["result"], r["details"]["permission"]) for r in denied.json()["events"]] == [
            ("forbidden", "release.start")
        ]
        anonymous_rows = await http.get(
            "/audit/events",
            params={"action": "auth.refused", "userId": "anonymous"},
            headers=viewer_headers,
        )
        assert [r["result"] for r in anonymous_rows.json()["events"]] == ["unauthenticated"]

        metrics = (await http.get("/metrics")).text
        assert (
            metric_value(
                metrics, "warden_api_gate_decisions_total", decision="approve", result="counted"
            )
            == 2
        )
        assert (
            metric_value(
                metrics, "warden_api_gate_decisions_total", decision="approve", result="refused"
            )
            == 1
        )
        assert metric_value(metrics, "warden_api_approvals_total", stage="pilot") == 2
        assert metric_value(metrics, "warden_api_releases_started_total") == 1
        assert metric_value(metrics, "warden_api_auth_denied_total", reason="forbidden") == 2
        assert (
            metric_value(
                metrics,
                "warden_api_requests_total",
                route="/releases/{release_id}/approve",
                status_class="2xx",
            )
            == 2
        )


async def test_pause_resume_abort_and_bad_requests(
    serve_api: ApiFactory, governance: Governance, worker: None, target: RecordingServer
) -> None:
    api = serve_api(GOVERNANCE_FILE=str(governance.path))
    plan = api_plan(target.url, _version())
    release_id = f"release-support-desk-{plan['version']}"
    async with api.client() as http:
        broken = {**plan, "stages": [{**plan["stages"][0], "base_url": "ftp://nowhere"}]}
        bad_plan = await http.post(
            "/releases", json={"plan": broken}, headers=governance.headers("alice")
        )
        assert bad_plan.status_code == 422
        assert any(f["field"].endswith("base_url") for f in bad_plan.json()["error"]["fields"])

        unknown = await http.get(
            "/releases/release-nothing-9.9.9", headers=governance.headers("victor")
        )
        assert unknown.status_code == 404
        assert unknown.json()["error"]["type"] == "UnknownRelease"

        bad_header = await http.get(
            "/releases", headers=governance.headers("victor", **{"X-Request-Id": "a b"})
        )
        assert bad_header.status_code == 400
        assert bad_header.json()["error"]["type"] == "InvalidHeader"

        started = await http.post(
            "/releases", json={"plan": plan}, headers=governance.headers("alice")
        )
        assert started.status_code == 201
        trace_id = started.headers["X-Trace-Id"]
        await wait_for_status(http, release_id, governance.headers("victor"), waiting_at("pilot"))

        paused = await http.post(
            f"/releases/{release_id}/pause", headers=governance.headers("oscar")
        )
        assert paused.status_code == 200, paused.text
        twice = await http.post(
            f"/releases/{release_id}/pause",
            json={"reason": "again"},
            headers=governance.headers("oscar"),
        )
        assert twice.status_code == 409 and twice.json()["error"]["type"] == "AlreadyPaused"
        resumed = await http.post(
            f"/releases/{release_id}/resume",
            json={"reason": "checked"},
            headers=governance.headers("olga"),
        )
        assert resumed.status_code == 200

        no_reason = await http.post(
            f"/releases/{release_id}/abort", json={}, headers=governance.headers("oscar")
        )
        assert no_reason.status_code == 422
        assert no_reason.json()["error"]["fields"][0]["field"] == "reason"
        viewer_abort = await http.post(
            f"/releases/{release_id}/abort",
            json={"reason": "stop"},
            headers=governance.headers("victor"),
        )
        assert viewer_abort.status_code == 403
        aborted = await http.post(
            f"/releases/{release_id}/abort",
            json={"reason": "wrong build"},
            headers=governance.headers("oscar"),
        )
        assert aborted.status_code == 200
        final = await wait_for_status(
            http, release_id, governance.headers("victor"), lambda s: s["state"] == "aborted"
        )
        assert "wrong build" in final["result"]["reason"]

        rows = (
            await http.get(
                "/audit/events",
                params={"releaseId": release_id},
                headers=governance.headers("victor"),
            )
        ).json()["events"]
        actions = [(r["action"], r["userId"]) for r in rows]
        assert ("release.paused", "oscar") in actions
        assert ("release.resumed", "olga") in actions
        assert ("release.aborted", "oscar") in actions
        assert ("auth.refused", "victor") in actions
        assert {r["traceId"] for r in rows if r["source"] == "workflow"} == {trace_id}

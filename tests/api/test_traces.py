"""GET /traces/{trace_id}: the chain `warden replay --trace-id` prints, over the API."""

from __future__ import annotations

import asyncio
import secrets
import uuid

from tests.api.conftest import ApiFactory, Governance
from tests.helpers import RecordingServer, smoke_plan
from warden.tracing import otel_trace_id


async def test_chain_of_a_trace_and_bad_trace_ids(
    serve_api: ApiFactory, governance: Governance, worker: None, target: RecordingServer
) -> None:
    api = serve_api(GOVERNANCE_FILE=str(governance.path), SEARCH_ATTRIBUTES="true")
    alice, victor = governance.headers("alice"), governance.headers("victor")
    version = f"5.0.0-{uuid.uuid4().hex[:6]}"
    traceparent_trace = secrets.token_hex(16)
    explicit = f"deploy-{uuid.uuid4().hex[:8]}"
    async with api.client() as http:
        # X-Trace-Id wins over traceparent: the release's trace is the header's.
        started = await http.post(
            "/releases",
            json={"plan": smoke_plan(target.url, version)},
            headers={
                **alice,
                "X-Trace-Id": explicit,
                "traceparent": f"00-{traceparent_trace}-{secrets.token_hex(8)}-01",
            },
        )
        assert started.status_code == 201, started.text
        assert started.json()["trace_id"] == explicit
        release_id = started.json()["release_id"]
        for _ in range(300):
            state = (await http.get(f"/releases/{release_id}", headers=alice)).json()["state"]
            if state == "promoted":
                break
            await asyncio.sleep(0.1)
        assert state == "promoted"

        # The calls the release made carry it, in its hashed OpenTelemetry form in traceparent.
        for call in target.requests:
            assert call["headers"]["X-Trace-Id"] == explicit
            assert call["headers"]["traceparent"].split("-")[1] == otel_trace_id(explicit)

        # An access change asked for in the same trace joins it.
        asked = await http.post(
            "/access/changes",
            json={"user": "victor", "role": "operator", "reason": "on-call"},
            headers={**alice, "X-Trace-Id": explicit},
        )
        assert asked.status_code == 201, asked.text
        change_id = asked.json()["change_id"]

        for _ in range(100):  # until visibility lists both and the release has completed
            response = await http.get(f"/traces/{explicit}", headers=victor)
            if (
                response.status_code == 200
                and len(response.json()["workflows"]) == 2
                and any(line["kind"] == "completed" for line in response.json()["chain"])
            ):
                break
            await asyncio.sleep(0.2)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["deterministic"] is True
        assert [w["workflow_id"] for w in body["workflows"]] == [release_id, change_id]
        assert body["workflows"][1]["workflow_type"] == "AccessChangeWorkflow"
        assert any(line["kind"] == "access.requested" for line in body["chain"])
        assert body["otel_trace_id"] == otel_trace_id(explicit)
        kinds = [line["kind"] for line in body["chain"]]
        assert kinds[0] == "started" and "release.started" in kinds and "stage" in kinds
        assert any(line["user"] == "alice" for line in body["chain"])
        assert all(line["trace_id"] == explicit for line in body["chain"])
        by_otel = await http.get(f"/traces/{otel_trace_id(explicit)}?replay=false", headers=victor)
        assert by_otel.status_code == 200 and by_otel.json()["workflows"] == []
        # The same chain (the access change may have moved on meanwhile).
        later = {(x["at"], x["kind"], x["summary"]) for x in by_otel.json()["chain"]}
        assert {(x["at"], x["kind"], x["summary"]) for x in body["chain"]} <= later

        # Unknown: 404 JSON; malformed: 422 JSON; the audit-reading role is needed.
        unknown = await http.get(f"/traces/{secrets.token_hex(16)}", headers=victor)
        assert (
            unknown.status_code == 404 and "carries trace id" in unknown.json()["error"]["message"]
        )
        malformed = await http.get("/traces/" + "x" * 201, headers=victor)
        assert malformed.status_code == 422 and malformed.json()["error"]
        spaced = await http.get("/traces/a%20b", headers=victor)
        assert spaced.status_code == 422
        anonymous = await http.get(f"/traces/{explicit}")
        assert anonymous.status_code == 401 and anonymous.json()["error"]

"""Failures answer JSON with a status a client can act on, never a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.api.conftest import Governance, metric_value
from tests.conftest import free_port
from warden.api import create_app
from warden.settings import Settings


@pytest_asyncio.fixture
async def app(
    settings: Settings, governance: Governance, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FastAPI]:
    """An app whose Temporal address has nothing listening."""
    monkeypatch.setenv("WARDEN_GOVERNANCE_FILE", str(governance.path))
    monkeypatch.setenv("WARDEN_TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    application = create_app(Settings())
    async with application.router.lifespan_context(application):
        yield application


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warden.test")


async def test_temporal_unreachable_is_503(app: FastAPI, governance: Governance) -> None:
    async with client(app) as http:
        response = await http.get("/releases", headers=governance.headers("victor"))
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "TemporalUnavailable"
        assert "not reachable" in response.json()["error"]["message"]
        assert response.headers["Retry-After"]
        health = await http.get("/healthz")
        assert health.status_code == 200 and health.json()["temporal"] == "not connected"


async def test_an_unexpected_failure_is_a_json_500(app: FastAPI, governance: Governance) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    async with client(app) as http:
        response = await http.get("/boom", headers={"X-Request-Id": "req-boom"})
        assert response.status_code == 500
        assert response.json() == {
            "error": {
                "type": "InternalError",
                "message": "internal error; the API log has the details under request id req-boom",
                "request_id": "req-boom",
            }
        }
        assert "secret" not in response.text
        assert response.headers["X-Request-Id"] == "req-boom"
        metrics = (await http.get("/metrics")).text
        assert (
            metric_value(metrics, "warden_api_requests_total", route="/boom", status_class="5xx")
            == 1
        )


async def test_unknown_and_repeated_query_parameters_are_refused(
    app: FastAPI, governance: Governance
) -> None:
    async with client(app) as http:
        typo = await http.get(
            "/audit/events", params={"releaseid": "x"}, headers=governance.headers("victor")
        )
        assert typo.status_code == 422
        assert typo.json()["error"]["fields"] == [
            {"location": "query", "field": "releaseid", "message": "unknown query parameter"}
        ]
        twice = await http.get(
            "/audit/events?userId=a&userId=b", headers=governance.headers("victor")
        )
        assert twice.status_code == 422
        assert twice.json()["error"]["fields"][0]["message"] == "given more than once"
        wrong_method = await http.delete("/releases", headers=governance.headers("victor"))
        assert wrong_method.status_code == 405
        assert wrong_method.headers["Allow"] == "GET, POST"
        assert wrong_method.json()["error"]["type"] == "MethodNotAllowed"

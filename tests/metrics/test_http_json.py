"""The http-json provider against a real loopback HTTP server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from activities.metrics import ManualClock, MeasureContext, MetricError
from activities.metrics.providers import HttpJsonProvider
from tests.helpers import recording_server
from warden.http import new_client
from warden.models.metrics import HttpJsonQuery

DOCUMENT = {
    "data": {"error_rate": 0.02, "ok": True, "text": "0.5", "name": "crm", "none": None},
    "items": [{"value": 3}, {"value": 4}],
}


def answer(status: int = 200, body: Any = DOCUMENT) -> Any:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda *args: (status, {"Content-Type": "application/json"}, payload)


def ctx(base_url: str) -> MeasureContext:
    return MeasureContext(
        base_url=base_url,
        trace_id="trace-json",
        release_id="release-support-desk-1.0.0",
        stage="pilot",
        check="json",
        interval_s=10,
        now=ManualClock().now(),
    )


async def measure(base_url: str, path: str, url: str = "/stats", **fields: Any) -> Any:
    http = new_client()
    try:
        query = HttpJsonQuery(url=url, json_path=path, **fields)
        return await HttpJsonProvider(http).measure(query, ctx(base_url), None)
    finally:
        await http.aclose()


@pytest.mark.parametrize(
    ("path", "value"),
    [("data.error_rate", 0.02), ("$.items.1.value", 4), ("data.ok", 1.0), ("data.text", 0.5)],
)
async def test_number_at_a_dotted_path(path: str, value: float) -> None:
    with recording_server(answer()) as server:
        reading = await measure(server.url, path)
    assert reading.value == pytest.approx(value)


@pytest.mark.parametrize("path", ["data.missing", "items.7.value", "data.none"])
async def test_missing_or_null_is_no_value(path: str) -> None:
    with recording_server(answer()) as server:
        reading = await measure(server.url, path)
    assert reading.value is None and "no data" in reading.message


async def test_not_a_number_is_an_error() -> None:
    with recording_server(answer()) as server:
        with pytest.raises(MetricError, match="'crm', not a number"):
            await measure(server.url, "data.name")
        with pytest.raises(MetricError, match="dict, not a number"):
            await measure(server.url, "data")


async def test_http_errors_and_invalid_json_are_errors() -> None:
    with recording_server(answer(503, {"error": "down"})) as server:
        with pytest.raises(MetricError, match="HTTP 503"):
            await measure(server.url, "data.error_rate")
    with recording_server(answer(200, b"<html>")) as server:
        with pytest.raises(MetricError, match="did not answer JSON"):
            await measure(server.url, "data.error_rate")


async def test_relative_url_trace_headers_and_plan_headers() -> None:
    with recording_server(answer()) as server:
        await measure(
            server.url + "/desk",
            "data.error_rate",
            url="api/stats?window=5m",
            headers={"Authorization": "Bearer plan-token"},
        )
    request = server.requests[0]
    assert request["path"] == "/desk/api/stats?window=5m"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-trace-id"] == "trace-json"
    assert headers["x-request-id"]
    assert headers["authorization"] == "Bearer plan-token"


async def test_an_unreachable_endpoint_is_an_error() -> None:
    with recording_server(answer()) as server:
        url = server.url
    with pytest.raises(MetricError, match="failed"):
        await measure(url, "data.error_rate")

"""Trace ids: what the start request carried becomes the OpenTelemetry trace; the OTEL_*
variables decide whether anything is exported."""

from __future__ import annotations

import hashlib
import secrets

import httpx
import pytest

from warden import tracing
from warden.http import trace_headers


def test_a_32_hex_trace_id_is_its_own_otel_trace_id_others_are_hashed() -> None:
    hex_id = secrets.token_hex(16)
    assert tracing.otel_trace_id(hex_id) == hex_id
    assert tracing.otel_trace_id("ci-4711") == hashlib.sha256(b"ci-4711").hexdigest()[:32]
    assert tracing.otel_trace_id("ci-4711") == tracing.otel_trace_id("ci-4711")
    assert tracing.otel_trace_id(hex_id.upper()) != hex_id.upper()  # uppercase is not W3C
    assert tracing.otel_trace_id("0" * 32) != "0" * 32  # the invalid trace id


def test_traceparent_trace_ids() -> None:
    trace, span = secrets.token_hex(16), secrets.token_hex(8)
    assert tracing.traceparent_trace_id(f"00-{trace}-{span}-01") == trace
    assert tracing.traceparent_trace_id(f" 00-{trace}-{span}-00 ") == trace
    for bad in (
        None,
        "",
        "garbage",
        f"ff-{trace}-{span}-01",
        f"00-{'0' * 32}-{span}-01",
        f"00-{trace}-{'0' * 16}-01",
        f"00-{trace.upper()}-{span}-01",
    ):
        assert tracing.traceparent_trace_id(bad) is None


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_SERVICE_NAME": "desk"}, False),
    ],
)
def test_only_the_otlp_variables_switch_export_on(
    env: dict[str, str], on: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert tracing.configured() is on


def test_every_outgoing_call_carries_the_trace() -> None:
    headers = trace_headers("ci-4711")
    assert headers["X-Trace-Id"] == "ci-4711"
    version, trace, span, flags = headers["traceparent"].split("-")
    assert (version, trace, flags) == ("00", tracing.otel_trace_id("ci-4711"), "01")
    assert len(span) == 16 and headers["X-Request-Id"]
    assert trace_headers("ci-4711")["X-Request-Id"] != headers["X-Request-Id"]
    # A call not handed a trace id (a flag backend's) carries the one its activity bound.
    assert "traceparent" not in trace_headers(None)
    with tracing.bound("release-trace"):
        assert trace_headers(None)["X-Trace-Id"] == "release-trace"
    assert "X-Trace-Id" not in trace_headers(None)


async def test_the_api_takes_the_trace_id_of_a_traceparent(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warden.api import create_app
    from warden.settings import Settings

    app = create_app(Settings())
    trace = secrets.token_hex(16)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warden.test") as http:
            traced = await http.get(
                "/healthz", headers={"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"}
            )
            assert traced.headers["X-Trace-Id"] == trace
            both = await http.get(
                "/healthz",
                headers={
                    "traceparent": f"00-{trace}-{secrets.token_hex(8)}-01",
                    "X-Trace-Id": "mine",
                },
            )
            assert both.headers["X-Trace-Id"] == "mine"  # X-Trace-Id wins
            bad = await http.get("/healthz", headers={"traceparent": "00-nonsense"})
            assert bad.status_code == 200 and len(bad.headers["X-Trace-Id"]) == 32

"""One trace id from the API request to the sample service: spans at a real OTLP receiver."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.cli.conftest import WARDEN
from tests.harness.otlp import OtlpReceiver, ReceivedSpan
from tests.helpers import RecordingServer, smoke_plan
from tests.tracing.conftest import traced_env, traced_stack
from warden.settings import Settings

CLIENT = 3  # SpanKind.SPAN_KIND_CLIENT in OTLP
SERVER = 2


def is_http_call(span: ReceivedSpan) -> bool:
    """A span of the worker's instrumented HTTP client (not a Temporal client span)."""
    return (
        span.kind == CLIENT
        and span.service == "release-warden-worker"
        and ("http.request.method" in span.attributes or "http.method" in span.attributes)
    )


async def wait_done(http: httpx.AsyncClient, release_id: str, headers: dict[str, str]) -> dict:
    for _ in range(600):
        body = (await http.get(f"/releases/{release_id}", headers=headers)).json()
        if body.get("state") in ("promoted", "rolled_back", "failed", "aborted"):
            return body  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"release {release_id} never ended")


async def test_one_trace_id_covers_api_workflow_activities_and_service_calls(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    receiver: OtlpReceiver,
    governance_tokens: tuple[Path, dict[str, str]],
    tmp_path: Path,
) -> None:
    governance, tokens = governance_tokens
    env = traced_env(dev_env, settings, receiver, governance)
    trace = secrets.token_hex(16)
    parent = secrets.token_hex(8)
    with RecordingServer() as service:
        async with (
            traced_stack(env, tmp_path) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            auth = {"Authorization": f"Bearer {tokens['rita']}"}
            started = await http.post(
                "/releases",
                json={"plan": smoke_plan(service.url, "3.1.0", owner="rita")},
                headers={**auth, "traceparent": f"00-{trace}-{parent}-01"},
            )
            assert started.status_code == 201, started.text
            assert started.headers["X-Trace-Id"] == trace
            assert started.json()["trace_id"] == trace
            release_id = started.json()["release_id"]
            assert (await wait_done(http, release_id, auth))["state"] == "promoted"

            def complete(spans: list[ReceivedSpan]) -> bool:
                names = {s.name for s in spans if s.trace_id == trace}
                return {
                    "POST /releases",
                    "StartWorkflow:ReleaseWorkflow",
                    "RunWorkflow:ReleaseWorkflow",
                    "RunActivity:run_smoke_checks",
                } <= names and sum(is_http_call(s) for s in spans if s.trace_id == trace) >= len(
                    [r for r in service.requests if r["path"] == "/healthz"]
                )

            spans = receiver.wait_for(complete)

    ours = [s for s in spans if s.trace_id == trace]
    api_request = next(s for s in ours if s.name == "POST /releases")
    assert api_request.service == "release-warden-api" and api_request.kind == SERVER
    assert api_request.parent_span_id == parent  # the caller's span is its parent
    services = {s.service for s in ours}
    assert services == {"release-warden-api", "release-warden-worker"}
    assert any(s.name == "StartActivity:run_smoke_checks" for s in ours)  # the workflow's
    client_spans = {s.span_id for s in ours if is_http_call(s)}

    # The sample service's access log: every call the release made carries the trace.
    calls = [r for r in service.requests if r["path"] == "/healthz"]
    assert len(calls) >= 2
    for call in calls:
        headers = {k.lower(): v for k, v in call["headers"].items()}
        assert headers["x-trace-id"] == trace
        assert headers["x-request-id"]
        version, trace_part, span_part, _flags = headers["traceparent"].split("-")
        assert (version, trace_part) == ("00", trace)
        assert span_part in client_spans  # the HTTP client span the worker exported
    assert len({r["headers"]["X-Request-Id"] for r in calls}) == len(calls)

    # A history recorded with tracing on replays without it, and the trace finds the release.
    for _ in range(50):  # visibility indexes WardenTraceId shortly after the start
        replayed = await asyncio.create_subprocess_exec(
            WARDEN, "replay", "--trace-id", trace, "--json",
            env={
                **{k: v for k, v in env.items() if not k.startswith("OTEL_")},
                "WARDEN_TOKEN": tokens["vera"],
            },
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await replayed.communicate()
        if replayed.returncode != 2:
            break
        await asyncio.sleep(0.2)
    assert replayed.returncode == 0, err.decode()
    report = json.loads(out)
    assert [w["workflow_id"] for w in report["workflows"]] == [release_id]
    assert report["otel_trace_id"] == trace

"""Outgoing HTTP: every call carries the release's `traceparent`, X-Request-Id and X-Trace-Id."""

from __future__ import annotations

import uuid

import httpx

from warden import tracing

USER_AGENT = "release-warden/0.1"


def trace_headers(trace_id: str | None, request_id: str | None = None) -> dict[str, str]:
    """The headers of one outgoing call: a new X-Request-Id (or `request_id`), and the trace's
    X-Trace-Id and W3C `traceparent` (the trace id bound by `tracing.bound` when `trace_id` is
    None). With tracing on, the instrumented client replaces `traceparent` with its own span's,
    in the same trace."""
    headers = {"User-Agent": USER_AGENT, "X-Request-Id": request_id or uuid.uuid4().hex}
    trace_id = trace_id or tracing.current_trace_id()
    if trace_id:
        headers["X-Trace-Id"] = trace_id
        headers["traceparent"] = tracing.traceparent(trace_id)
    return headers


def new_client(timeout: float = 10.0) -> httpx.AsyncClient:
    """One pooled client per activity class; loopback and in-cluster calls only, no proxies from
    env. With tracing on, each request is a client span whose `traceparent` it sends."""
    client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
    return tracing.instrument_httpx(client)  # type: ignore[no-any-return]

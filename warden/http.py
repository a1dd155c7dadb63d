"""Outgoing HTTP: every call carries the release's X-Request-Id and X-Trace-Id."""

from __future__ import annotations

import uuid

import httpx

USER_AGENT = "release-warden/0.1"


def trace_headers(trace_id: str | None, request_id: str | None = None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "X-Request-Id": request_id or uuid.uuid4().hex}
    if trace_id:
        headers["X-Trace-Id"] = trace_id
    return headers


def new_client(timeout: float = 10.0) -> httpx.AsyncClient:
    """One pooled client per activity class; loopback and in-cluster calls only, no proxies from env."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

"""Smoke checks: HTTP probes against the stage, with expected status and body text."""

from __future__ import annotations

import time
from urllib.parse import urljoin

import httpx
from temporalio import activity

from warden.http import new_client, trace_headers
from warden.models.smoke import SmokeCheck, SmokeInput, SmokeReport, SmokeResult


def resolve_url(base_url: str, path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    return urljoin(base_url.rstrip("/") + "/", path.lstrip("/"))


class SmokeActivities:
    def __init__(self, http: httpx.AsyncClient | None = None) -> None:
        self._owns_http = http is None
        self._http = http or new_client()

    async def aclose(self) -> None:
        """Close the HTTP client this made (the worker calls it when it stops)."""
        if self._owns_http:
            await self._http.aclose()

    @activity.defn(name="run_smoke_checks")
    async def run_smoke_checks(self, input: SmokeInput) -> SmokeReport:
        results = [await self._probe(input, check) for check in input.checks]
        return SmokeReport(passed=all(r.ok for r in results), results=results)

    async def _probe(self, input: SmokeInput, check: SmokeCheck) -> SmokeResult:
        url = resolve_url(input.base_url, check.path)
        started = time.perf_counter()
        try:
            response = await self._http.request(
                check.method,
                url,
                headers=trace_headers(input.trace_id),
                timeout=check.timeout.total_seconds(),
            )
        except httpx.HTTPError as exc:
            return SmokeResult(
                name=check.name,
                url=url,
                ok=False,
                error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
            )
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        error = None
        if response.status_code not in check.expect_status:
            error = (
                f"HTTP {response.status_code}, expected {', '.join(map(str, check.expect_status))}"
            )
        elif check.contains is not None and check.contains not in response.text:
            error = f"body does not contain {check.contains!r}"
        return SmokeResult(
            name=check.name,
            url=url,
            ok=error is None,
            status=response.status_code,
            elapsed_ms=elapsed,
            error=error,
        )

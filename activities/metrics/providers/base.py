"""The provider interface: where a number comes from. The engine decides what it means.

A provider turns one query into one `Reading`. It raises `MetricError` when it cannot
measure (unreachable, bad query, malformed answer); the engine counts that as an error
measurement and never lets it crash the activity. Adding a provider (Datadog, say) is a
new query model in `warden.models.metrics`, a class here, and one entry in
`activities.metrics.providers.build_providers`; the workflow does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from activities.smoke import resolve_url
from warden.http import trace_headers


@dataclass(frozen=True)
class MeasureContext:
    """Where and when a measurement is taken."""

    base_url: str
    trace_id: str
    release_id: str
    stage: str
    check: str
    interval_s: float
    now: datetime

    def url(self, path: str) -> str:
        """Relative URLs resolve against the stage's base_url."""
        return resolve_url(self.base_url, path)


@dataclass(frozen=True)
class Reading:
    """One answer from a provider.

    `value` None (or NaN/Inf) is no usable value: an inconclusive measurement, never a pass.
    `state` is kept with the check and handed back next time (e.g. the previous scrape).
    `retry_in_s` set means no measurement was taken yet (a baseline): ask again after it.
    """

    value: float | None
    message: str = ""
    state: dict[str, Any] | None = None
    retry_in_s: float | None = None


class MetricError(Exception):
    """The provider could not measure; counted as an error, reported in the measurement."""


class MetricProvider(Protocol):
    name: str

    async def measure(
        self, query: Any, ctx: MeasureContext, state: dict[str, Any] | None
    ) -> Reading:
        """Measure `query` once; raise `MetricError` when that is impossible."""
        ...


async def http_get(
    http: httpx.AsyncClient,
    url: str,
    ctx: MeasureContext,
    *,
    timeout_s: float,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    auth: httpx.Auth | None = None,
    what: str = "GET",
) -> httpx.Response:
    """GET with the release's trace headers; transport failures become readable `MetricError`s."""
    sent = trace_headers(ctx.trace_id)
    sent.update(headers or {})
    try:
        if auth is not None:
            return await http.get(url, headers=sent, params=params, timeout=timeout_s, auth=auth)
        return await http.get(url, headers=sent, params=params, timeout=timeout_s)
    except httpx.TimeoutException:
        raise MetricError(f"{what} {_safe(url)} timed out after {timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        detail = str(exc) or type(exc).__name__
        raise MetricError(f"{what} {_safe(url)} failed: {detail}") from None


def _safe(url: str) -> str:
    """A URL without credentials or query string, for messages."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"", query=None))


def response_error(what: str, url: str, response: httpx.Response) -> MetricError:
    body = response.text.strip().replace("\n", " ")
    return MetricError(f"{what} {_safe(url)} answered HTTP {response.status_code}: {body[:200]}")

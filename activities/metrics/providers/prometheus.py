"""PromQL instant queries over Prometheus' HTTP API (`GET /api/v1/query`)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import httpx

from activities.metrics.providers.base import (
    MeasureContext,
    MetricError,
    Reading,
    http_get,
    response_error,
)
from warden.models.metrics import PrometheusQuery


class PrometheusProvider:
    """One number from an instant query: a one-series vector or a scalar.

    An empty vector, NaN or ±Inf is no usable value (inconclusive); more than one series,
    a range vector or a string is an error, because a threshold needs exactly one number.
    Credentials are sent only to the configured Prometheus (`WARDEN_PROMETHEUS_URL`), never
    to another `address` a plan names.
    """

    name = "prometheus"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._http = http
        self._url = url.rstrip("/") if url else None
        self._token = token
        self._username = username
        self._password = password
        self._timeout_s = timeout_s

    async def measure(
        self, query: PrometheusQuery, ctx: MeasureContext, state: dict[str, Any] | None
    ) -> Reading:
        base = (query.address or self._url or "").rstrip("/")
        if not base:
            raise MetricError(
                "no Prometheus address: set the query's 'address' or WARDEN_PROMETHEUS_URL"
            )
        endpoint = base + "/api/v1/query"
        headers, auth = self._credentials(base)
        response = await http_get(
            self._http,
            endpoint,
            ctx,
            timeout_s=self._timeout_s,
            headers=headers,
            params={"query": query.query},
            auth=auth,
            what="Prometheus query",
        )
        try:
            body = response.json()
        except ValueError:
            raise response_error("Prometheus query", endpoint, response) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            if error:
                kind = body.get("errorType", "error")
                raise MetricError(f"Prometheus rejected the query ({kind}): {error}")
            raise response_error("Prometheus query", endpoint, response)
        return _reading(body.get("data") or {})

    def _credentials(self, base: str) -> tuple[dict[str, str], httpx.Auth | None]:
        if self._url is None or _origin(base) != _origin(self._url):
            return {}, None
        if self._token:
            return {"Authorization": f"Bearer {self._token}"}, None
        if self._username:
            return {}, httpx.BasicAuth(self._username, self._password or "")
        return {}, None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _reading(data: dict[str, Any]) -> Reading:
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return _number(result[1], "scalar")
    if kind == "vector" and isinstance(result, list):
        if not result:
            return Reading(None, "the query returned no series (empty result): no data")
        if len(result) > 1:
            shown = ", ".join(_labels(s.get("metric", {})) for s in result[:3])
            more = f" and {len(result) - 3} more" if len(result) > 3 else ""
            raise MetricError(
                f"the query returned {len(result)} series ({shown}{more}); a threshold needs one: "
                "aggregate it, e.g. sum(...), max(...) or sum by () (...)"
            )
        series = result[0]
        value = series.get("value")
        if not isinstance(value, list) or len(value) != 2:
            raise MetricError("Prometheus answered a vector sample without a value")
        labels = _labels(series.get("metric", {}))
        return _number(value[1], labels or "series")
    if kind in ("matrix", "string"):
        raise MetricError(
            f"the query returned a {kind}; a check needs an instant vector or scalar "
            "(wrap range selectors in a function such as rate(...[5m]))"
        )
    raise MetricError(f"Prometheus answered an unknown result type {kind!r}")


def _number(raw: object, what: str) -> Reading:
    try:
        number = float(str(raw))
    except ValueError:
        raise MetricError(f"Prometheus answered a value that is not a number: {raw!r}") from None
    if math.isnan(number):
        return Reading(None, f"{what} is NaN (e.g. 0/0: no traffic in the range): no usable value")
    if math.isinf(number):
        return Reading(None, f"{what} is {raw} (division by zero?): no usable value")
    return Reading(number, f"{what} = {number:.6g}")


def _labels(metric: dict[str, Any]) -> str:
    name = metric.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest else (name or "{}")

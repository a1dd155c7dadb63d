"""GET a JSON document and take the number at a dotted path (like Argo Rollouts' web provider)."""

from __future__ import annotations

from typing import Any

import httpx

from activities.metrics.providers.base import (
    MeasureContext,
    MetricError,
    Reading,
    http_get,
    response_error,
)
from warden.models.metrics import HttpJsonQuery


class HttpJsonProvider:
    """`json_path` is dotted: `data.error_rate`, `items.0.value`; a leading `$.` is allowed.

    A number, a numeric string or a boolean (1/0) is a value; null or a missing key is no
    usable value (inconclusive); anything else, a non-2xx answer or invalid JSON is an error.
    """

    name = "http-json"

    def __init__(self, http: httpx.AsyncClient, *, timeout_s: float = 10.0) -> None:
        self._http = http
        self._timeout_s = timeout_s

    async def measure(
        self, query: HttpJsonQuery, ctx: MeasureContext, state: dict[str, Any] | None
    ) -> Reading:
        url = ctx.url(query.url)
        response = await http_get(
            self._http,
            url,
            ctx,
            timeout_s=self._timeout_s,
            headers={"Accept": "application/json", **query.headers},
            what="GET",
        )
        if not response.is_success:
            raise response_error("GET", url, response)
        try:
            document = response.json()
        except ValueError:
            raise MetricError(f"{url} did not answer JSON") from None
        return extract(document, query.json_path)


def extract(document: Any, path: str) -> Reading:
    parts = [p for p in path.removeprefix("$").strip(".").split(".") if p]
    node = document
    walked: list[str] = []
    for part in parts:
        walked.append(part)
        if isinstance(node, dict):
            if part not in node:
                return Reading(None, f"{'.'.join(walked)} is missing from the document: no data")
            node = node[part]
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                return Reading(None, f"{'.'.join(walked)} is missing from the document: no data")
        else:
            return Reading(
                None, f"{'.'.join(walked[:-1]) or '$'} is not an object or list: no data"
            )
    shown = ".".join(parts) or "$"
    if node is None:
        return Reading(None, f"{shown} is null: no data")
    if isinstance(node, bool):
        return Reading(1.0 if node else 0.0, f"{shown} = {str(node).lower()}")
    if isinstance(node, int | float):
        return Reading(float(node), f"{shown} = {node:.6g}")
    if isinstance(node, str):
        try:
            number = float(node)
        except ValueError:
            raise MetricError(f"{shown} is {node!r}, not a number") from None
        return Reading(number, f"{shown} = {number:.6g}")
    raise MetricError(f"{shown} is a {type(node).__name__}, not a number")

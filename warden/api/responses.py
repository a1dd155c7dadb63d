"""Error responses declared in the OpenAPI document, so clients (and schemathesis) know every status."""

from __future__ import annotations

from typing import Any

from warden.api.models import ErrorBody

DESCRIPTIONS = {
    400: "Bad request (e.g. an unusable X-Request-Id / X-Trace-Id header).",
    401: "No credentials, or a token that is not valid (audited as auth.refused).",
    403: "Authenticated, but not allowed (audited as auth.refused, or ops.denied outside the whitelist).",
    404: "No such release, or the endpoint is switched off.",
    409: "Refused in the release's current state.",
    422: "The request does not match its schema; `error.fields` names every bad field.",
    502: "The flag backend failed.",
    503: "Temporal, a worker, the governance file or the audit store cannot be reached.",
}


def errors(
    *statuses: int, conflict: str | None = None, not_found: str | None = None
) -> dict[int | str, Any]:
    described = dict(DESCRIPTIONS)
    if conflict:
        described[409] = conflict
    if not_found:
        described[404] = not_found
    return {
        status: {"model": ErrorBody, "description": described[status]}
        for status in (400, *statuses)
    }

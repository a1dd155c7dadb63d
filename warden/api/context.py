"""Request ids, trace ids, request metrics and the last line of defence against a traceback.

Every request gets an `X-Request-Id` (kept if the caller sent a usable one) and an `X-Trace-Id`
(kept if sent; else the trace id of its W3C `traceparent`, or of the request's span when tracing
is on; else new); both are echoed on the response and reach the workflow and its audit
events. An endpoint may replace the trace id (a start body's `trace_id`) before it answers.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warden import tracing
from warden.api.errors import error_response
from warden.api.metrics import ApiMetrics
from warden.api.models import ID_PATTERN

log = logging.getLogger("warden.api")

REQUEST_ID = "x-request-id"
TRACE_ID = "x-trace-id"
TRACEPARENT = "traceparent"
_ID = re.compile(ID_PATTERN)
UNMATCHED_ROUTE = "<unmatched>"


def new_id() -> str:
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Pure ASGI, so it sees every response, streaming or not, and every escaping exception."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        state: dict[str, Any] = scope.setdefault("state", {})
        bad = [
            name
            for name in (REQUEST_ID, TRACE_ID)
            if name in headers and not _ID.match(headers[name])
        ]
        state["request_id"] = (
            headers.get(REQUEST_ID)
            if REQUEST_ID not in bad and headers.get(REQUEST_ID)
            else new_id()
        )
        state["trace_id"] = (
            headers.get(TRACE_ID)
            if TRACE_ID not in bad and headers.get(TRACE_ID)
            else tracing.traceparent_trace_id(headers.get(TRACEPARENT))
            or tracing.current_otel_trace_id()
            or new_id()
        )
        started = time.perf_counter()
        status_seen: list[int] = []

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(int(message["status"]))
                out = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (REQUEST_ID.encode(), TRACE_ID.encode())
                ]
                out.append((b"x-request-id", str(state["request_id"]).encode("latin-1")))
                out.append((b"x-trace-id", str(state["trace_id"]).encode("latin-1")))
                message = {**message, "headers": out}
            await send(message)

        try:
            if bad:
                names = ", ".join(n.title() for n in bad)
                response = error_response(
                    None,
                    400,
                    "InvalidHeader",
                    f"{names}: use 1-200 visible ASCII characters without spaces",
                    request_id=state["request_id"],
                )
                await response(scope, receive, send_with_ids)
            else:
                await self.app(scope, receive, send_with_ids)
        except Exception:
            log.exception(
                "unhandled error on %s %s (request id %s, trace id %s)",
                scope.get("method"),
                scope.get("path"),
                state["request_id"],
                state["trace_id"],
            )
            if status_seen:
                raise
            response = error_response(
                None,
                500,
                "InternalError",
                f"internal error; the API log has the details under request id {state['request_id']}",
                request_id=state["request_id"],
            )
            await response(scope, receive, send_with_ids)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            status = status_seen[0] if status_seen else 500
            self.metrics.observe_request(
                template, str(scope.get("method", "")), status, time.perf_counter() - started
            )

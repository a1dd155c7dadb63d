"""`api.failure`: every failed call (status 400 or above) to the API or the dashboard is one audit
row with its path, status and request id, written by the server so that it cannot be lost
(a browser that fails a fetch may never report it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_FAILURE = "api.failure"


class FailureAuditMiddleware:
    """Inside `RequestContextMiddleware`, so the request id and trace id are known."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            await self._record(scope, 500)
            raise
        if status and status[0] >= 400:
            await self._record(scope, status[0])

    async def _record(self, scope: Scope, status: int) -> None:
        app = scope.get("app")
        api = getattr(getattr(app, "state", None), "warden", None)
        if api is None:
            return
        request = Request(scope)
        state = scope.get("state", {})
        await api.record(
            request,
            API_FAILURE,
            str(status),
            user=str(state.get("user") or "anonymous")[:200],
            release_id=(scope.get("path_params") or {}).get("release_id"),
            details={
                "path": scope.get("path", ""),
                "status": status,
                "method": scope.get("method", ""),
                "face": "dashboard" if str(scope.get("path", "")).startswith("/ui") else "api",
            },
        )

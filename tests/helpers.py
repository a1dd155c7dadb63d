"""Test helpers: a real loopback HTTP server, plan builders, a worker context."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[str, str, bytes, dict[str, str]], tuple[int, dict[str, str], bytes]]


def users_with_tokens(
    people: dict[str, list[str]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Governance file `users` entries giving each person their roles and a new token's hash,
    and the tokens themselves by name."""
    from warden.stores.governance import new_token

    tokens: dict[str, str] = {}
    users = []
    for name, roles in people.items():
        token, digest = new_token()
        tokens[name] = token
        users.append({"name": name, "roles": roles, "token_sha256": digest})
    return users, tokens


class RecordingServer:
    """A real HTTP server on 127.0.0.1 that records requests and answers with a scripted handler."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.handler = handler or (
            lambda method, path, body, headers: (200, {"Content-Type": "text/plain"}, b"ok")
        )
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                outer.requests.append(
                    {"method": self.command, "path": self.path, "body": body, "headers": headers}
                )
                status, out_headers, out = outer.handler(self.command, self.path, body, headers)
                self.send_response(status)
                for key, value in out_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def json_bodies(self) -> list[Any]:
        return [json.loads(r["body"]) for r in self.requests if r["body"]]


@contextmanager
def recording_server(handler: Handler | None = None) -> Iterator[RecordingServer]:
    with RecordingServer(handler) as server:
        yield server


def smoke_plan(
    base_url: str, version: str, owner: str = "alice", stages: tuple[str, ...] = ("dev", "staging")
) -> dict[str, Any]:
    """A plan whose stages only smoke-check /healthz: the shortest release there is."""
    return {
        "service": "support-desk",
        "version": version,
        "owner": owner,
        "stages": [
            {"name": n, "base_url": base_url, "smoke": [{"name": "health", "path": "/healthz"}]}
            for n in stages
        ],
    }


def plan_dict(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A four-stage plan with smoke checks and a sign-off at pilot."""
    stages = [
        {"name": "dev", "base_url": base_url, "smoke": [{"name": "health", "path": "/healthz"}]},
        {
            "name": "staging",
            "base_url": base_url,
            "smoke": [{"name": "health", "path": "/healthz"}],
        },
        {
            "name": "pilot",
            "base_url": base_url,
            "smoke": [{"name": "health", "path": "/healthz"}],
            "signoff": {
                "approvers": ["carol", "dave", "erin"],
                "quorum": 2,
                "deadline": "2h",
                "escalate_before": "30m",
            },
        },
        {
            "name": "production",
            "base_url": base_url,
            "smoke": [{"name": "health", "path": "/healthz"}],
        },
    ]
    plan: dict[str, Any] = {
        "service": "support-desk",
        "version": "1.0.0",
        "owner": "alice",
        "stages": stages,
    }
    plan.update(overrides)
    return plan

"""Dashboard sessions: a signed cookie that names who signed in, and a CSRF token bound to it.

The cookie holds no secret that works elsewhere: for a token it carries the token's SHA-256
(the governance file's `token_sha256`), so each request looks the user up again and a revoked
token or changed roles take effect at once; in dev-identity mode it carries the claimed name.
It is signed (HMAC-SHA256) with a key kept in the state dir (or `WARDEN_DASHBOARD_SECRET`), so
a session survives an API restart and nothing is kept in the process. HttpOnly, SameSite=Strict,
Path=/ui; Secure when served over https.

The CSRF token is an HMAC of the session's nonce: every POST must send it back (form field
`csrf` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from warden.settings import Settings

COOKIE = "warden_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    kind: Literal["token", "dev"]
    subject: str  # the token's SHA-256, or the claimed user name
    nonce: str
    expires: float


def signing_key(settings: Settings) -> bytes:
    if settings.dashboard_secret is not None:
        return settings.dashboard_secret.get_secret_value().encode()
    path: Path = settings.resolved_state_dir / "dashboard.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    try:
        os.link(tmp, path)  # the first writer wins; a concurrent one reads its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = signing_key(self.settings)
        return self._key

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self.key, payload, hashlib.sha256).digest())

    def issue(self, kind: Literal["token", "dev"], subject: str) -> tuple[str, Session]:
        session = Session(
            kind=kind,
            subject=subject,
            nonce=secrets.token_hex(16),
            expires=float(int(time.time() + self.settings.dashboard_session_hours * 3600)),
        )
        payload = json.dumps(
            {"k": kind, "s": subject, "n": session.nonce, "e": int(session.expires)},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{self._sign(payload)}", session

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie names, if it is ours, well formed and not expired."""
        if not cookie or "." not in cookie or len(cookie) > 4096:
            return None
        body, _, signature = cookie.partition(".")
        try:
            payload = _unb64(body)
        except ValueError:
            return None
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            data: dict[str, Any] = json.loads(payload)
            session = Session(
                kind=data["k"],
                subject=str(data["s"]),
                nonce=str(data["n"]),
                expires=float(data["e"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if session.kind not in ("token", "dev") or session.expires < time.time():
            return None
        return session

    def csrf(self, session: Session) -> str:
        return hmac.new(self.key, f"csrf|{session.nonce}".encode(), hashlib.sha256).hexdigest()[:40]

    def csrf_ok(self, session: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf(session), str(sent))


def cookie_options(secure: bool, max_age: int) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": secure,
        "path": "/ui",
        "max_age": max_age,
    }

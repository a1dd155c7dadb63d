"""Who is calling: bearer tokens checked against the governance file, or a claimed name in dev.

Tokens are stored hashed (`users[].token_sha256`); effective roles are the file's roles plus
the access changes the committee approved. The file is read again when it changes on disk.
A governance file that cannot be read refuses every request (503) rather than guessing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from warden.api.errors import ApiError
from warden.models.governance import USER_PATTERN, GovernanceFile
from warden.settings import Settings
from warden.stores.governance import (
    GovernanceError,
    GovernanceStore,
    Principal,
    load_governance,
    principal_for_token,
)

DEV_USER_HEADER = "x-warden-user"
_USER = re.compile(USER_PATTERN)
#: A claimed dev identity acts with every permission; the audit trail marks it `devIdentity`.
DEV_ROLES = frozenset({"admin"})


def dev_identity_allowed(settings: Settings) -> bool:
    """Only on one machine in dev: no governance file, WARDEN_ENV=dev, the embedded Temporal server."""
    return settings.governance_file is None and settings.env == "dev" and settings.embedded


class Unauthenticated(Exception):
    """No usable credentials; the message says what to send instead."""


class Authenticator:
    def __init__(self, settings: Settings, store: Callable[[], GovernanceStore]) -> None:
        self.settings = settings
        self.store = store
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int], GovernanceFile] | None = None

    def governance(self) -> GovernanceFile | None:
        path = self.settings.governance_file
        if path is None:
            return None
        return self._load(path)

    def _load(self, path: Path) -> GovernanceFile:
        try:
            stat = path.stat()
        except OSError as exc:
            raise ApiError(
                503,
                "GovernanceUnavailable",
                f"governance file {path} cannot be read ({exc.strerror}); every request is refused until it can",
            ) from None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            try:
                governance = load_governance(path)
            except GovernanceError as exc:
                raise ApiError(
                    503,
                    "GovernanceUnavailable",
                    f"{exc}; every request is refused until the file is fixed",
                ) from None
            self._cached = (key, governance)
            return governance

    def identify(self, authorization: str | None, dev_user: str | None) -> Principal:
        """The caller, or `Unauthenticated`. Blocking (file and database reads): run it in a thread."""
        token = _bearer_token(authorization)
        governance = self.governance()
        if governance is None:
            if not dev_identity_allowed(self.settings):
                raise Unauthenticated(
                    "no governance file is configured (WARDEN_GOVERNANCE_FILE), so no token can be checked"
                )
            if token is not None:
                raise Unauthenticated(
                    "tokens need a governance file (WARDEN_GOVERNANCE_FILE); in this dev setup "
                    "send X-Warden-User: <name> instead"
                )
            if not dev_user:
                raise Unauthenticated(
                    "send X-Warden-User: <name> (dev setup without a governance file)"
                )
            if not _USER.match(dev_user):
                raise Unauthenticated(f"X-Warden-User {dev_user[:100]!r} is not a user name")
            return Principal(dev_user, DEV_ROLES, dev_identity=True)
        if token is None:
            if authorization:
                raise Unauthenticated("the Authorization header must be `Bearer <token>`")
            raise Unauthenticated(
                "send Authorization: Bearer <token> (`warden token new` makes one)"
            )
        principal = principal_for_token(governance, self.store().grants(), token)
        if principal is None:
            raise Unauthenticated("the token is not valid (unknown or revoked)")
        return principal


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()

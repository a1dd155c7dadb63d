"""Who is acting, on every face: a token checked against the governance file, or a claimed name.

Two modes, stated plainly:
- dev identity: no governance file (`WARDEN_GOVERNANCE_FILE` unset). Names are claimed, and
  everything they do is marked `devIdentity: true`.
- verified: a governance file is configured, in any `WARDEN_ENV`. Every action needs a token
  whose SHA-256 is in the file; the acting user is the token's; a different `--as` (or
  `X-Warden-As`), an unknown or revoked token, or no token at all is refused; and the user's
  roles (the file's plus approved access changes) must give the action's permission.

The CLI and the API both ask this service; a refusal's message names the problem and the role
that was needed, never the token.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from warden.errors import Forbidden, Unauthenticated, Unavailable
from warden.models.governance import AccessGrant, GovernanceFile
from warden.settings import Settings
from warden.stores.governance import (
    GovernanceError,
    Principal,
    effective_roles,
    load_governance,
    principal_for_token,
    roles_for,
)

#: The audit action of every refused identity or role, on every face.
AUTH_REFUSED = "auth.refused"
NO_TOKEN = "no token: set WARDEN_TOKEN to your API token (`warden token new` makes one)"
BAD_TOKEN = "the token is not valid (unknown or revoked)"


@dataclass(frozen=True)
class Actor:
    """The user an action is done as, and whether that name is only claimed (dev identity)."""

    name: str
    dev_identity: bool
    principal: Principal | None = None


class IdentityService:
    def __init__(self, settings: Settings, grants: Callable[[], list[AccessGrant]]) -> None:
        self.settings = settings
        self._grants = grants
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int], GovernanceFile] | None = None

    @property
    def verified(self) -> bool:
        return self.settings.governance_file is not None

    def governance(self) -> GovernanceFile | None:
        """The governance file, read again when it changes on disk; one that cannot be read
        refuses everything rather than guessing."""
        path = self.settings.governance_file
        if path is None:
            return None
        return self._load(path)

    def _load(self, path: Path) -> GovernanceFile:
        try:
            stat = path.stat()
        except OSError as exc:
            raise Unavailable(
                f"governance file {path} cannot be read ({exc.strerror}); every request is "
                "refused until it can",
                "GovernanceUnavailable",
            ) from None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            try:
                governance = load_governance(path)
            except GovernanceError as exc:
                raise Unavailable(
                    f"{exc}; every request is refused until the file is fixed",
                    "GovernanceUnavailable",
                ) from None
            self._cached = (key, governance)
            return governance

    def from_token(self, token: str | None) -> Principal:
        """The token's user with their effective roles; `Unauthenticated` otherwise."""
        governance = self.governance()
        if governance is None:
            raise Unauthenticated(
                "no governance file is configured (WARDEN_GOVERNANCE_FILE), so no token can be "
                "checked"
            )
        if not token:
            raise Unauthenticated(NO_TOKEN)
        principal = principal_for_token(governance, self._grants(), token)
        if principal is None:
            raise Unauthenticated(BAD_TOKEN)
        return principal

    def from_token_digest(self, digest: str) -> Principal:
        """The user whose token has this SHA-256 (a dashboard session names the token by it, so
        a revoked token or changed roles take effect on the session's next request)."""
        governance = self.governance()
        if governance is None:
            raise Unauthenticated("no governance file is configured (WARDEN_GOVERNANCE_FILE)")
        for user in governance.users:
            if user.token_sha256 and hmac.compare_digest(user.token_sha256, digest):
                return Principal(user.name, effective_roles(governance, self._grants(), user.name))
        raise Unauthenticated(BAD_TOKEN)

    @staticmethod
    def check_claim(principal: Principal, claimed: str | None) -> None:
        """A name given with the token (`--as`) must be the token's own."""
        if claimed and claimed != principal.name:
            raise Unauthenticated(
                f"acting as {claimed} with a token that belongs to {principal.name}; drop --as "
                f"or use {claimed}'s own token"
            )

    @staticmethod
    def authorize(principal: Principal, permission: str) -> None:
        if not principal.can(permission):
            roles = ", ".join(sorted(principal.roles)) or "none"
            raise Forbidden(
                f"{principal.name} may not {permission}: that needs one of the roles "
                f"{', '.join(roles_for(permission))} (theirs: {roles})",
            )

    def verify(self, token: str | None, claimed: str | None, permission: str) -> Actor:
        """Verified mode: the token's user, if the token is good, matches `claimed` and allows
        `permission`."""
        principal = self.from_token(token)
        self.check_claim(principal, claimed)
        self.authorize(principal, permission)
        return Actor(principal.name, dev_identity=False, principal=principal)

"""Who is calling the API: a bearer token checked by the identity service (the same checks as the
CLI's), or, on one dev machine without a governance file, a claimed name.

Tokens are stored hashed (`users[].token_sha256`); effective roles are the file's roles plus
the access changes the committee approved. The file is read again when it changes on disk.
A governance file that cannot be read refuses every request (503) rather than guessing.
`X-Warden-As` names who the caller means to act as (the CLI sends its `--as`); it must be the
token's own user.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from warden.errors import Unauthenticated
from warden.models.governance import USER_PATTERN, AccessGrant
from warden.services.identity import IdentityService
from warden.settings import Settings
from warden.stores.governance import Principal

DEV_USER_HEADER = "x-warden-user"
AS_USER_HEADER = "x-warden-as"
_USER = re.compile(USER_PATTERN)
#: A claimed dev identity acts with every permission; the audit trail marks it `devIdentity`.
DEV_ROLES = frozenset({"admin"})


def dev_identity_allowed(settings: Settings) -> bool:
    """Only on one machine in dev: no governance file, WARDEN_ENV=dev, the embedded Temporal server."""
    return settings.governance_file is None and settings.env == "dev" and settings.embedded


class Authenticator:
    def __init__(self, settings: Settings, grants: Callable[[], list[AccessGrant]]) -> None:
        self.settings = settings
        self.identity = IdentityService(settings, grants)

    def identify(
        self, authorization: str | None, dev_user: str | None, claimed: str | None = None
    ) -> Principal:
        """The caller, or `Unauthenticated`. Blocking (file and database reads): run it in a thread."""
        token = _bearer_token(authorization)
        if self.identity.governance() is None:
            if not dev_identity_allowed(self.settings):
                raise Unauthenticated(
                    "no governance file is configured (WARDEN_GOVERNANCE_FILE), so no token can "
                    "be checked"
                )
            if token is not None:
                raise Unauthenticated(
                    "tokens need a governance file (WARDEN_GOVERNANCE_FILE); in this dev setup "
                    "send X-Warden-User: <name> instead"
                )
            name = dev_user or claimed
            if not name:
                raise Unauthenticated(
                    "send X-Warden-User: <name> (dev setup without a governance file)"
                )
            if not _USER.match(name):
                raise Unauthenticated(f"X-Warden-User {name[:100]!r} is not a user name")
            return Principal(name, DEV_ROLES, dev_identity=True)
        if token is None and authorization:
            raise Unauthenticated("the Authorization header must be `Bearer <token>`")
        if token is None:
            raise Unauthenticated(
                "send Authorization: Bearer <token> (`warden token new` makes one)"
            )
        principal = self.identity.from_token(token)
        self.identity.check_claim(principal, claimed)
        return principal


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()

"""What every command shares: its session (settings, identity, services), exit codes, printing.

A command takes its session with `session()`: settings are read once, and the services it asks
for contact Temporal only when first used, so a request is validated before anything is
contacted. `run()` runs the command's async work.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from pydantic import BaseModel, TypeAdapter

from warden import tracing
from warden.errors import Forbidden, Kind, Unauthenticated, WardenError
from warden.models.audit import AuditEvent
from warden.models.governance import AccessGrant
from warden.runtime.client import TemporalLink
from warden.services.access import AccessService
from warden.services.audit import AuditService
from warden.services.flags import FlagService
from warden.services.governance import GovernanceService
from warden.services.identity import AUTH_REFUSED, Actor, IdentityService
from warden.services.releases import ReleaseService
from warden.services.remote import (
    ApiConnection,
    RemoteAccess,
    RemoteAudit,
    RemoteFlags,
    RemoteGovernance,
    RemoteIdentity,
    RemoteReleases,
)
from warden.settings import Settings
from warden.stores.audit import AuditStore
from warden.stores.governance import GovernanceStore

if TYPE_CHECKING:
    from warden.services.replay import ReplayService

T = TypeVar("T")

EXIT_OK = 0
EXIT_NOT_PROMOTED = 1
EXIT_INVALID = 2
EXIT_UNAVAILABLE = 3


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    click.echo(f"warden: error: {' '.join(message.splitlines())}", err=True)
    sys.exit(code)


CLAIMED_WARNING = (
    "identities are claimed, not verified (no governance file: WARDEN_GOVERNANCE_FILE); "
    "this was recorded with devIdentity: true"
)
#: Warnings for the end of a command that did what it was asked (an error stays one line).
PENDING_WARNINGS: list[str] = []


def warn_once(message: str) -> None:
    if message not in PENDING_WARNINGS:
        PENDING_WARNINGS.append(message)


#: Permissions that only look: a claimed identity is not worth a warning for these.
VIEWS = frozenset(
    {"release.view", "flags.view", "audit.read", "access.view", "governance.view", "identity.view"}
)

#: Each kind of error (`warden.errors.Kind`) ends a command with one exit code.
EXIT_CODES: dict[Kind, int] = {
    Kind.INVALID: EXIT_INVALID,
    Kind.NOT_FOUND: EXIT_INVALID,
    Kind.CONFLICT: EXIT_INVALID,
    Kind.REFUSED: EXIT_INVALID,
    Kind.UNAUTHENTICATED: EXIT_INVALID,
    Kind.FORBIDDEN: EXIT_INVALID,
    Kind.UNAVAILABLE: EXIT_UNAVAILABLE,
    Kind.BACKEND_FAILED: EXIT_UNAVAILABLE,
}


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's async work to its end."""
    return asyncio.run(work)


def load_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"WARDEN_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid settings: {problems}")


Releases = ReleaseService | RemoteReleases
Flags = FlagService | RemoteFlags
Access = AccessService | RemoteAccess
Governance = GovernanceService | RemoteGovernance
Audit = AuditService | RemoteAudit


class Session:
    """One command's settings and services; Temporal is contacted on the first call that needs it."""

    def __init__(self) -> None:
        self._links: dict[bool, TemporalLink] = {}
        self._store: AuditStore | None = None
        self._identity: IdentityService | None = None
        self._api: ApiConnection | None = None

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    def temporal(self, *, need_worker: bool = True) -> TemporalLink:
        """The Temporal link; `need_worker` starts a background worker on one machine."""
        if need_worker not in self._links:
            tracing.setup("release-warden-cli")
            self._links[need_worker] = TemporalLink(
                self.settings, need_worker=need_worker, on_restart=lambda m: info(f"warden: {m}")
            )
        return self._links[need_worker]

    def releases(self, *, need_worker: bool = True) -> Releases:
        if self._api is not None:
            return RemoteReleases(self._api)
        return ReleaseService(self.temporal(need_worker=need_worker))

    def flags(self) -> Flags:
        if self._api is not None:
            return RemoteFlags(self._api)
        return FlagService(self.temporal())

    def access(self) -> Access:
        if self._api is not None:
            return RemoteAccess(self._api)
        return AccessService(self.temporal())

    def governance(self) -> Governance:
        if self._api is not None:
            return RemoteGovernance(self._api)
        return GovernanceService(self.settings)

    def audit(self) -> Audit:
        if self._api is not None:
            return RemoteAudit(self._api)
        return AuditService(self.audit_store())

    def replay(self) -> ReplayService:
        """Replays run where the workers' code is: never through the API. (Imported here: the
        replayer's imports would slow every other command down.)"""
        from warden.services.replay import ReplayService

        return ReplayService(
            self.temporal(need_worker=False), AuditService(self.audit_store()), self.settings
        )

    @property
    def remote(self) -> ApiConnection | None:
        """The API connection when this command goes through WARDEN_API_URL (after `actor`)."""
        return self._api

    def local_only(self, what: str) -> None:
        """Refuse what only works where the workers are, when the CLI goes through the API."""
        if self.settings.api_url:
            fail(
                f"{what} works on the machine the workers run on; with WARDEN_API_URL set this "
                "CLI only talks to the API (unset it there, or run the command on that machine)"
            )

    def audit_store(self) -> AuditStore:
        if self._store is None:
            self._store = AuditStore(self.settings.audit_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._api is not None:
            self._api.close()

    def identity(self) -> IdentityService:
        if self._identity is None:
            self._identity = IdentityService(self.settings, self._grants)
        return self._identity

    def _grants(self) -> list[AccessGrant]:
        store = GovernanceStore(self.settings.audit_url)
        try:
            return store.grants()
        finally:
            store.close()

    def actor(self, as_user: str | None, permission: str) -> Actor:
        """Who acts in this command, allowed `permission`.

        Verified mode (a governance file): the token's user, refused (exit 2, `auth.refused` in
        the audit trail) when the token is missing, unknown or revoked, when `--as` names
        someone else, or when their roles do not give `permission`. Dev identity: the claimed
        name, with one warning line that it is not verified."""
        settings = self.settings
        if settings.api_url:
            return self._remote_actor(as_user)
        identity = self.identity()
        if not identity.verified:
            if permission not in VIEWS:
                warn_once(CLAIMED_WARNING)
            user = as_user or settings.user or getpass.getuser()
            if not user.strip():
                fail("say who you are with --as <user>")
            return Actor(user, dev_identity=True)
        token = settings.token.get_secret_value() if settings.token else None
        claimed = as_user
        try:
            principal = identity.from_token(token)
            claimed = principal.name if as_user is None else as_user
            identity.check_claim(principal, as_user)
            identity.authorize(principal, permission)
        except (Unauthenticated, Forbidden) as exc:
            self._refused(claimed, permission, exc)
            raise
        return Actor(principal.name, dev_identity=False, principal=principal)

    def _remote_actor(self, as_user: str | None) -> Actor:
        """Through the API: it checks the token (and `--as` against it), audits a refusal, and
        each endpoint checks the role."""
        settings = self.settings
        assert settings.api_url
        token = settings.token.get_secret_value() if settings.token else None
        claimed = as_user if token else (as_user or settings.user or getpass.getuser())
        self._api = ApiConnection(settings.api_url, token=token, claimed=claimed)
        actor = RemoteIdentity(self._api, has_token=token is not None).whoami()
        if actor.dev_identity:
            warn_once(CLAIMED_WARNING)
        return actor

    def _refused(self, user: str | None, permission: str, exc: WardenError) -> None:
        """The refusal in the audit trail, before the command exits 2."""
        ctx = click.get_current_context(silent=True)
        event = AuditEvent(
            eventId=str(uuid.uuid4()),
            userId=(user or "anonymous")[:200],
            action=AUTH_REFUSED,
            entity=f"cli:{ctx.command_path if ctx else 'warden'}",
            result="forbidden" if isinstance(exc, Forbidden) else "unauthenticated",
            timestamp=datetime.now(UTC),
            source="cli",
            details={"face": "cli", "permission": permission, "reason": str(exc)},
        )
        self.audit_store().write([event])


def session() -> Session:
    """The running command's session (one per command line)."""
    root = click.get_current_context().find_root()
    if not isinstance(root.obj, Session):
        root.obj = Session()
        root.call_on_close(root.obj.close)
    return root.obj


M = TypeVar("M", bound=BaseModel)


def build_request(model: type[M], options: dict[str, str], **values: Any) -> M:
    """Validate a request before anything is sent; a bad value is one line naming its option, exit 2."""
    from pydantic import ValidationError

    from warden.models.plan import format_validation_error

    try:
        return model(**values)
    except ValidationError as exc:
        problems = []
        for line in format_validation_error(exc):
            field, _, message = line.partition(": ")
            problems.append(f"{options.get(field, field)}: {message}")
        fail("; ".join(problems))


def require_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Click callback: an id or file argument must not be empty (an empty path reads as '.')."""
    if not value.strip():
        raise click.BadParameter("must not be empty", ctx=ctx, param=param)
    return value


def emit_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        click.echo(value.model_dump_json(indent=2))
    else:
        click.echo(TypeAdapter(type(value)).dump_json(value, indent=2).decode())


def info(message: str) -> None:
    """Progress for people goes to stderr, so stdout stays clean for --json and pipes."""
    click.echo(message, err=True)


as_option = click.option(
    "--as", "as_user", metavar="USER", help="Who is acting (default: WARDEN_USER or your login)."
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document and nothing else on stdout."
)
quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress lines on stderr (errors are still printed)."
)

"""What every command shares: its session (settings, identity, services), exit codes, printing.

A command takes its session with `session()`: settings are read once, and the services it asks
for contact Temporal only when first used, so a request is validated before anything is
contacted. `run()` runs the command's async work.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Coroutine
from functools import cached_property
from typing import Any, NoReturn, TypeVar

import click
from pydantic import BaseModel, TypeAdapter

from warden.errors import Kind
from warden.runtime.client import TemporalLink
from warden.services.access import AccessService
from warden.services.audit import AuditService
from warden.services.flags import FlagService
from warden.services.governance import GovernanceService
from warden.services.releases import ReleaseService
from warden.settings import Settings
from warden.stores.audit import AuditStore

T = TypeVar("T")

EXIT_OK = 0
EXIT_NOT_PROMOTED = 1
EXIT_INVALID = 2
EXIT_UNAVAILABLE = 3


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    click.echo(f"warden: error: {' '.join(message.splitlines())}", err=True)
    sys.exit(code)


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


class Session:
    """One command's settings and services; Temporal is contacted on the first call that needs it."""

    def __init__(self) -> None:
        self._links: dict[bool, TemporalLink] = {}
        self._store: AuditStore | None = None

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    def temporal(self, *, need_worker: bool = True) -> TemporalLink:
        """The Temporal link; `need_worker` starts a background worker on one machine."""
        if need_worker not in self._links:
            self._links[need_worker] = TemporalLink(self.settings, need_worker=need_worker)
        return self._links[need_worker]

    def releases(self, *, need_worker: bool = True) -> ReleaseService:
        return ReleaseService(self.temporal(need_worker=need_worker))

    def flags(self) -> FlagService:
        return FlagService(self.temporal())

    def access(self) -> AccessService:
        return AccessService(self.temporal())

    def governance(self) -> GovernanceService:
        return GovernanceService(self.settings)

    def audit(self) -> AuditService:
        if self._store is None:
            self._store = AuditStore(self.settings.audit_url)
        return AuditService(self._store)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def identity(self, as_user: str | None) -> tuple[str, bool]:
        """Who is acting, and whether that is only claimed (no token: the embedded dev setup)."""
        user = as_user or self.settings.user or getpass.getuser()
        if not user.strip():
            fail("say who you are with --as <user>")
        return user, self.settings.token is None


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

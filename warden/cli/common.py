"""What every command shares: exit codes, identity, connecting, printing JSON."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import click
from pydantic import BaseModel, TypeAdapter

from warden.settings import Settings

T = TypeVar("T")

EXIT_OK = 0
EXIT_NOT_PROMOTED = 1
EXIT_INVALID = 2
EXIT_UNAVAILABLE = 3


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    click.echo(f"warden: error: {' '.join(message.splitlines())}", err=True)
    sys.exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def load_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"WARDEN_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid settings: {problems}")


def identity(settings: Settings, as_user: str | None) -> tuple[str, bool]:
    """Who is acting, and whether that is only claimed (no token: the embedded dev setup)."""
    user = as_user or settings.user or getpass.getuser()
    if not user.strip():
        fail("say who you are with --as <user>")
    return user, settings.token is None


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

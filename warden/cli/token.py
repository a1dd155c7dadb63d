"""`warden token`: API tokens, stored only as SHA-256 in the governance file."""

from __future__ import annotations

import click

from warden.stores.governance import new_token


@click.group()
def token() -> None:
    """API tokens for the HTTP API (stored only as SHA-256 in the governance file)."""


@token.command(name="new")
@click.option("--user", required=True)
def token_new(user: str) -> None:
    """Make a token: give the token to the user, put the hash in the governance file."""
    secret, digest = new_token()
    click.echo(f"token for {user}: {secret}")
    click.echo(f"governance file:  users: [{{name: {user}, token_sha256: {digest}, roles: [...]}}]")

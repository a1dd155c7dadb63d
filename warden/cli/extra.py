"""Command groups registered beside plan/release/server."""

from __future__ import annotations

import click


def commands() -> list[click.Command]:
    from warden.cli.api import api
    from warden.cli.ops import access, audit, flags, governance, token

    return [flags, access, governance, token, audit, api]

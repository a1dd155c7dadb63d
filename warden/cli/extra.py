"""Optional command groups."""

from __future__ import annotations

import click


def commands() -> list[click.Command]:
    return []

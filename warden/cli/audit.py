"""`warden audit`: the audit trail of every action on releases, flags and access."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from warden.cli.common import info, session
from warden.cli.render import table, when
from warden.models.audit import AuditQuery


@click.group()
def audit() -> None:
    """The audit trail: every action on releases, flags and access."""


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def with_filters(fn: Callable[..., None]) -> Callable[..., None]:
    """The filter options every audit command takes, handed to `fn` as one `query`."""

    @functools.wraps(fn)
    def command(
        release: str | None,
        user: str | None,
        action: str | None,
        since: datetime | None,
        until: datetime | None,
        trace: str | None,
        limit: int,
        **rest: Any,
    ) -> None:
        query = AuditQuery(
            releaseId=release,
            userId=user,
            action=action,
            since=_aware(since),
            until=_aware(until),
            traceId=trace,
            limit=limit,
        )
        fn(query=query, **rest)

    options = [
        click.option("--release", help="Only this release id."),
        click.option("--user", help="Only this user."),
        click.option("--action", help="Only this action (e.g. signoff.approval)."),
        click.option("--since", type=click.DateTime(), help="From this time (UTC)."),
        click.option("--until", type=click.DateTime(), help="Up to this time (UTC)."),
        click.option("--trace", help="Only this trace id (replays a release's chain of events)."),
        click.option(
            "--limit", default=100_000, show_default=True, type=click.IntRange(1, 10_000_000)
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@audit.command()
@with_filters
@click.option("--csv", "as_csv", is_flag=True, help="CSV (the default is JSON lines).")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
def export(query: AuditQuery, as_csv: bool, output: Path | None) -> None:
    """Export audit events as CSV or JSON lines."""
    s = session()
    s.actor(None, "audit.read")
    text, count = s.audit().export(query, csv=as_csv)
    if output:
        output.write_text(text)
        info(f"{count} event(s) written to {output}")
    else:
        sys.stdout.write(text)


@audit.command(name="list")
@with_filters
def audit_list(query: AuditQuery) -> None:
    """Audit events as a table."""
    s = session()
    s.actor(None, "audit.read")
    events = s.audit().query(query.model_copy(update={"limit": min(query.limit, 500)}))
    click.echo(
        table(
            [[when(e.timestamp), e.userId, e.action, e.result, e.entity] for e in events],
            ["time", "user", "action", "result", "entity"],
        )
        if events
        else "no audit events match"
    )

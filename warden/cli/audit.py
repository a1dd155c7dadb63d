"""`warden audit`: the audit trail of every action on releases, flags and access."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from warden.cli.common import fail, info, session
from warden.cli.render import details_text, table, when
from warden.models.audit import TIME_FORMS, AuditQuery, parse_time


@click.group()
def audit() -> None:
    """The audit trail: every action on releases, flags and access."""


class AuditTime(click.ParamType[datetime, Any]):
    """`--since`/`--until`: the forms `GET /audit/events` takes too (`warden.models.audit.parse_time`)."""

    name = "TIME"

    def __init__(self, *, end_of_day: bool) -> None:
        self.end_of_day = end_of_day

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_time(str(value), end_of_day=self.end_of_day)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


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
        **rest: Any,
    ) -> None:
        query = AuditQuery(
            releaseId=release,
            userId=user,
            action=action,
            since=since,
            until=until,
            traceId=trace,
        )
        fn(query=query, **rest)

    options = [
        click.option("--release", help="Only this release id."),
        click.option("--user", help="Only this user."),
        click.option("--action", help="Only this action (e.g. signoff.approval)."),
        click.option(
            "--since",
            type=AuditTime(end_of_day=False),
            help=f"From this time: {TIME_FORMS}; no zone = UTC; a date = from its start.",
        ),
        click.option(
            "--until",
            type=AuditTime(end_of_day=True),
            help="Up to this time, inclusive; a date = to its end.",
        ),
        click.option("--trace", help="Only this trace id (replays a release's chain of events)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _write(output: Path, text: str) -> None:
    """Write an export; a path that cannot be written is one line naming what is wrong."""
    directory = output.parent
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        fail(f"cannot write {output}: directory {directory} {what}")
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")


@audit.command()
@with_filters
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000_000),
    help="At most this many events, the oldest (default: every event that matches).",
)
@click.option(
    "--tail", type=click.IntRange(1, 10_000_000), help="Only the newest N events (in time order)."
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV (the default is JSON lines).")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
def export(
    query: AuditQuery, limit: int | None, tail: int | None, as_csv: bool, output: Path | None
) -> None:
    """Export audit events, oldest first, as CSV or JSON lines."""
    if limit and tail:
        fail("give --limit (the oldest N) or --tail (the newest N), not both")
    query = query.model_copy(
        update={"limit": tail or limit or 10_000_000, "newest": tail is not None}
    )
    s = session()
    s.actor(None, "audit.read")
    text, count = s.audit().export(query, csv=as_csv)
    if output:
        _write(output, text)
        info(f"{count} event(s) written to {output}")
    else:
        sys.stdout.write(text)


LIST_DEFAULT = 50
LIST_MAX = 500


@audit.command(name="list")
@with_filters
@click.option(
    "--tail",
    "-n",
    type=click.IntRange(1, LIST_MAX),
    help=f"How many of the newest events to show (default {LIST_DEFAULT}).",
)
@click.option(
    "--limit", type=click.IntRange(1, LIST_MAX), help="The same as --tail (the newest N events)."
)
def audit_list(query: AuditQuery, tail: int | None, limit: int | None) -> None:
    """The newest audit events as a table, oldest at the top, with what each was about."""
    count = tail or limit or LIST_DEFAULT
    s = session()
    s.actor(None, "audit.read")
    events = s.audit().query(query.model_copy(update={"limit": count, "newest": True}))
    click.echo(
        table(
            [
                [when(e.timestamp), e.userId, e.action, e.result, e.entity, details_text(e.details)]
                for e in events
            ],
            ["time", "user", "action", "result", "entity", "details"],
        )
        if events
        else "no audit events match"
    )

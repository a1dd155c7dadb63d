"""`warden report`: the reports the committee decides on, built now; and the schedule of the
monthly governance review (`warden governance review --schedule`)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from warden.cli.common import info, require_id, run, session
from warden.models.reports import REPORT_FORMATS, ReportKind, report_json_schema
from warden.services.reports import (
    DEFAULT_REVIEW_CRON,
    ReportService,
    check_kind,
    check_month,
)


def _service() -> ReportService:
    s = session()
    return ReportService(s.temporal(), s.audit_store())


def _from_api(path: str, fmt: str, output: Path | None, **params: Any) -> bool:
    """Through WARDEN_API_URL: the API builds the report (the same code); False otherwise."""
    remote = session().remote
    if remote is None:
        return False
    query = {"format": fmt, **{k: v for k, v in params.items() if v is not None}}
    text = remote.call("GET", path, params=query).text
    if fmt == "json":
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"
    _emit(text, output)
    return True


def _month(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from warden.errors import WardenError

    try:
        return check_month(value)
    except WardenError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    default="md",
    show_default=True,
    help="Markdown, JSON (schema: `warden report schema KIND`) or HTML with charts.",
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    info(f"written to {output}")


def _release_report(
    kind: ReportKind,
    release_id: str,
    fmt: str,
    output: Path | None,
    **options: Any,
) -> None:
    session().actor(None, "release.view")
    path = f"/releases/{release_id}/reports/{kind.value}"
    day = options.get("day")
    if _from_api(
        path, fmt, output, stage=options.get("stage"), date=day.isoformat() if day else None
    ):
        return
    service = _service()
    report = run(service.build(kind, release_id, **options))
    _emit(service.render(report, fmt), output)


@click.group()
def report() -> None:
    """Reports: go/no-go, pilot health, release notes, retrospective, governance review."""


@report.command(name="go-no-go")
@click.argument("release_id", callback=require_id)
@click.option("--stage", help="The stage whose sign-off it is for (default: the pilot).")
@format_option
@output_option
def go_no_go(release_id: str, stage: str | None, fmt: str, output: Path | None) -> None:
    """Readiness score (0-100), blocking items and Go/No-go, with the issues and rollbacks."""
    _release_report(ReportKind.GO_NO_GO, release_id, fmt, output, stage=stage)


@report.command(name="pilot-health")
@click.argument("release_id", callback=require_id)
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="One UTC day (YYYY-MM-DD); default: the plan's interval up to now.",
)
@click.option("--stage", help="The pilot stage (default: the first stage marked as pilot).")
@format_option
@output_option
def pilot_health(
    release_id: str, day: datetime | None, stage: str | None, fmt: str, output: Path | None
) -> None:
    """Channel connectivity, API error trends and governance alerts over a period."""
    when: date | None = day.date() if day else None
    _release_report(ReportKind.PILOT_HEALTH, release_id, fmt, output, day=when, stage=stage)


@report.command(name="release-notes")
@click.argument("release_id", callback=require_id)
@format_option
@output_option
def release_notes(release_id: str, fmt: str, output: Path | None) -> None:
    """Flags before the release and now, IM channels, contacts, description, every gate."""
    _release_report(ReportKind.RELEASE_NOTES, release_id, fmt, output)


@report.command(name="retrospective")
@click.argument("release_id", callback=require_id)
@format_option
@output_option
def retrospective(release_id: str, fmt: str, output: Path | None) -> None:
    """Outcome, duration, changes, risks, approvers and follow-ups (as in release_log.md)."""
    _release_report(ReportKind.RETROSPECTIVE, release_id, fmt, output)


@report.command(name="governance-review")
@click.option("--month", required=True, callback=_month, help="The month, YYYY-MM (UTC).")
@format_option
@output_option
def governance_review(month: str, fmt: str, output: Path | None) -> None:
    """Audit log summary and gaps, permission changes, interface health, governance file."""
    session().actor(None, "audit.read")
    if _from_api("/reports/governance-review", fmt, output, month=month):
        return
    service = _service()
    review = run(service.governance_review(month))
    _emit(service.render(review, fmt), output)


def _kind(ctx: click.Context, param: click.Parameter, value: str) -> ReportKind:
    from warden.errors import WardenError

    try:
        return check_kind(value)
    except WardenError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@report.command(name="schema")
@click.argument("kind", metavar="KIND", callback=_kind)
def schema(kind: ReportKind) -> None:
    """The JSON Schema of a report's JSON form (KIND: go-no-go, pilot-health, release-notes,
    retrospective, governance-review)."""
    click.echo(json.dumps(report_json_schema(kind), indent=2))


@click.command(name="review")
@click.option(
    "--schedule",
    "schedule",
    is_flag=True,
    help="Create or update the Temporal Schedule that builds the review every month.",
)
@click.option(
    "--cron",
    default=DEFAULT_REVIEW_CRON,
    show_default=True,
    help="When it runs (UTC); each run covers the month before.",
)
def governance_review_schedule(schedule: bool, cron: str) -> None:
    """The monthly governance review: `--schedule` keeps its Temporal Schedule.

    Build one now with `warden report governance-review --month YYYY-MM`."""
    if not schedule:
        raise click.UsageError(
            "give --schedule (or build one now: warden report governance-review --month YYYY-MM)"
        )
    from activities.reports import GOVERNANCE_SCHEDULE_ID

    s = session()
    s.local_only("`warden governance review --schedule`")
    s.actor(None, "ops.use")
    done = run(_service().schedule_governance_review(cron))
    click.echo(f"schedule {GOVERNANCE_SCHEDULE_ID} {done} ({cron})")

"""`warden release`: start, look at, decide on and control releases."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import click

from warden.cli.common import (
    EXIT_NOT_PROMOTED,
    EXIT_OK,
    Releases,
    as_option,
    build_request,
    emit_json,
    info,
    json_option,
    quiet_option,
    require_id,
    run,
    session,
)
from warden.cli.render import event_line, junit_xml, list_text, status_text, step_line
from warden.errors import WardenError
from warden.models.plan import ReleasePlan, load_plan
from warden.models.release import (
    AbortRequest,
    ControlRequest,
    DecisionRequest,
    ReleaseState,
    ReleaseStatus,
)
from warden.services.releases import check_trace_id
from warden.tracing import traceparent_trace_id


def exit_for(status: ReleaseStatus) -> int:
    return EXIT_OK if status.result and status.result.exit_code == 0 else EXIT_NOT_PROMOTED


def trace_id_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        return check_trace_id(value)
    except WardenError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _not_nan(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if value != value:  # FloatRange lets NaN through: no comparison with NaN is true
        raise click.BadParameter("nan is not a number of seconds", ctx=ctx, param=param)
    return value


@click.group()
def release() -> None:
    """Releases: start, status, list, watch, approve, reject, pause, resume, abort."""


@release.command()
@click.argument(
    "plan_path", metavar="PLAN", type=click.Path(dir_okay=False, path_type=str), callback=require_id
)
@as_option
@click.option(
    "--wait", is_flag=True, help="Wait until the release ends; exit 0 promoted, 1 not promoted."
)
@json_option
@quiet_option
@click.option("--rerun", is_flag=True, help="Start a version again after its earlier run ended.")
@click.option(
    "--trace-id",
    callback=trace_id_option,
    help="Trace id to carry through every call and audit event "
    "(default: the trace id of a W3C TRACEPARENT in the environment, else a new one).",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --wait: write the checklist as JUnit XML.",
)
def start(
    plan_path: str,
    as_user: str | None,
    wait: bool,
    as_json: bool,
    quiet: bool,
    rerun: bool,
    trace_id: str | None,
    junit: Path | None,
) -> None:
    """Start the release a plan describes (its id is release-<service>-<version>).

    With --wait, progress goes to stderr as it happens (--quiet silences it) and the result to
    stdout: the status, or with --json one JSON document."""
    plan_model = load_plan(plan_path)
    trace_id = trace_id or traceparent_trace_id(os.environ.get("TRACEPARENT"))
    s = session()
    actor = s.actor(as_user, "release.start")
    user, dev_identity = actor.name, actor.dev_identity
    code = run(
        _start(
            s.releases(),
            plan_model,
            user,
            dev_identity=dev_identity,
            trace_id=trace_id,
            rerun=rerun,
            wait=wait,
            as_json=as_json,
            quiet=quiet,
            junit=junit,
        )
    )
    raise SystemExit(code)


async def _start(
    service: Releases,
    plan: ReleasePlan,
    user: str,
    *,
    dev_identity: bool,
    trace_id: str | None,
    rerun: bool,
    wait: bool,
    as_json: bool,
    quiet: bool,
    junit: Path | None,
) -> int:
    started = await service.start(
        plan, user, trace_id=trace_id, dev_identity=dev_identity, rerun=rerun
    )
    release_id = started.release_id
    for warning in started.warnings:  # shown even with --quiet: the plan will not do all it says
        click.echo(f"warden: warning: {warning}", err=True)
    if not wait:
        if as_json:
            emit_json(
                {
                    "release_id": release_id,
                    "run_id": started.run_id,
                    "started_by": user,
                    "warnings": started.warnings,
                }
            )
        else:
            click.echo(release_id)
            if not quiet:
                info(f"started {release_id}; follow it with `warden release watch {release_id}`")
        return EXIT_OK
    if not quiet:
        info(f"started {release_id}; waiting until it ends (progress below, result on stdout)")
    status = await follow(service, release_id, quiet=quiet)
    if junit:
        junit.write_text(junit_xml(status))
    if as_json:
        emit_json(status)
    else:
        click.echo(status_text(status, events=0))
    return exit_for(status)


#: With nothing new for this long, `follow` says what the release is still doing (CI systems
#: stop jobs that print nothing for ten minutes).
STILL_EVERY_S = 300.0


async def follow(
    service: Releases,
    release_id: str,
    *,
    quiet: bool = False,
    interval: float = 1.0,
    until_signoff: bool = False,
) -> ReleaseStatus:
    """Print each new timeline event, and each change of the current step (to stderr), until the
    release ends (or, `until_signoff`, until a stage waits for sign-off); return the status it
    stopped at."""
    seen: set[tuple[Any, ...]] = set()
    step = ""
    said_at = time.monotonic()
    while True:
        status = await service.status(release_id)
        lines = []
        for event in status.timeline:
            key = (event.at, event.action, event.message, event.stage)
            if key not in seen:
                seen.add(key)
                lines.append(event_line(event))
        if status.current_step != step and not status.state.ended:
            step = status.current_step
            if step and not any(step in line for line in lines):
                lines.append(step_line(status))
        elif not lines and time.monotonic() - said_at >= STILL_EVERY_S:
            lines.append(step_line(status, still=True))
        if lines:
            said_at = time.monotonic()
            if not quiet:
                for line in lines:
                    info(line)
        if status.state.ended or (until_signoff and status.state == ReleaseState.WAITING_APPROVAL):
            return status
        await asyncio.sleep(interval)


@release.command()
@click.argument("release_id", callback=require_id)
@json_option
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the checklist as JUnit XML.",
)
def status(release_id: str, as_json: bool, junit: Path | None) -> None:
    """Stages, current step, evidence so far, approvals, flags and result of a release."""
    s = session()
    s.actor(None, "release.view")
    current = run(s.releases().status(release_id))
    if junit:
        junit.write_text(junit_xml(current))
    if as_json:
        emit_json(current)
    else:
        click.echo(status_text(current))


@release.command(name="list")
@json_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def list_(as_json: bool, limit: int) -> None:
    """Releases, newest first, with their state and current stage."""
    s = session()
    s.actor(None, "release.view")
    rows = run(s.releases(need_worker=False).list(limit=limit))
    if as_json:
        emit_json(rows)
    else:
        click.echo(list_text(rows))


@release.command()
@click.argument("release_id", callback=require_id)
@click.option(
    "--interval", default=1.0, show_default=True, type=click.FloatRange(0.2, 60), callback=_not_nan
)
@click.option(
    "--until-signoff",
    is_flag=True,
    help="Stop as soon as a stage waits for sign-off (exit 0), saying who may approve it.",
)
@quiet_option
def watch(release_id: str, interval: float, until_signoff: bool, quiet: bool) -> None:
    """Live progress until the release ends; exit 0 promoted, 1 not promoted.

    The status and the result go to stdout, progress to stderr (--quiet silences it)."""
    s = session()
    s.actor(None, "release.view")
    raise SystemExit(run(_watch(s.releases(), release_id, interval, quiet, until_signoff)))


async def _watch(
    service: Releases,
    release_id: str,
    interval: float,
    quiet: bool,
    until_signoff: bool = False,
) -> int:
    first = await service.status(release_id)
    click.echo(status_text(first, events=0))
    if not quiet:
        info("")
    final = await follow(
        service, release_id, interval=interval, quiet=quiet, until_signoff=until_signoff
    )
    if not quiet:
        info("")
    if not final.state.ended:
        click.echo(signoff_line(final))
        return EXIT_OK
    if final.result:
        click.echo(f"{release_id}: {final.result.outcome.value} — {final.result.reason}")
    return exit_for(final)


def signoff_line(status: ReleaseStatus) -> str:
    """Which stage waits for sign-off, how far its quorum is, and the command that gives it."""
    stage = next((s for s in status.stages if s.name == status.current_stage), None)
    signoff = stage.signoff if stage else None
    name = status.current_stage or "?"
    progress = ""
    if signoff is not None:
        progress = f" ({len(signoff.approvals)} of {signoff.quorum} approvals given"
        if signoff.members:
            progress += "; members " + ", ".join(signoff.members)
        progress += ")"
    return (
        f"{status.release_id}: {name} waits for sign-off{progress}; approve with "
        f"`warden release approve {status.release_id} --stage {name} --as USER`"
    )


def _decision(
    release_id: str, stage: str, as_user: str | None, comment: str, as_json: bool, approve: bool
) -> None:
    s = session()
    actor = s.actor(as_user, "release.decide")
    user, dev_identity = actor.name, actor.dev_identity
    request = build_request(
        DecisionRequest,
        {"stage": "--stage", "user": "--as", "comment": "--comment"},
        stage=stage,
        user=user,
        comment=comment,
        dev_identity=dev_identity,
    )
    service = s.releases()
    outcome = run((service.approve if approve else service.reject)(release_id, request))
    if as_json:
        emit_json(outcome)
    else:
        click.echo(
            f"{release_id} {stage}: {outcome.message}"
            + (f" — stage {outcome.decided}" if outcome.decided else "")
        )


@release.command()
@click.argument("release_id", callback=require_id)
@click.option("--stage", required=True, help="The stage whose sign-off you give.")
@as_option
@click.option("--comment", default="", help="Why (recorded in the audit trail).")
@json_option
def approve(release_id: str, stage: str, as_user: str | None, comment: str, as_json: bool) -> None:
    """Approve a stage waiting for sign-off (members only; not whoever started the release)."""
    _decision(release_id, stage, as_user, comment, as_json, approve=True)


@release.command()
@click.argument("release_id", callback=require_id)
@click.option("--stage", required=True, help="The stage you reject.")
@as_option
@click.option("--comment", required=True, help="Why (required).")
@json_option
def reject(release_id: str, stage: str, as_user: str | None, comment: str, as_json: bool) -> None:
    """Reject a stage waiting for sign-off; the release rolls back."""
    _decision(release_id, stage, as_user, comment, as_json, approve=False)


def _control(release_id: str, action: str, as_user: str | None, reason: str, as_json: bool) -> None:
    s = session()
    actor = s.actor(as_user, f"release.{action}")
    user, dev_identity = actor.name, actor.dev_identity
    # validated before connecting: a bad value is exit 2 even when Temporal is down
    options = {"user": "--as", "reason": "--reason"}
    service = s.releases()
    if action == "abort":
        abort = build_request(
            AbortRequest, options, user=user, reason=reason, dev_identity=dev_identity
        )
        outcome = run(service.abort(release_id, abort))
    else:
        request = build_request(
            ControlRequest, options, user=user, reason=reason, dev_identity=dev_identity
        )
        outcome = run((service.pause if action == "pause" else service.resume)(release_id, request))
    if as_json:
        emit_json(outcome)
    else:
        click.echo(f"{release_id}: {outcome.message}")


@release.command()
@click.argument("release_id", callback=require_id)
@as_option
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
@json_option
def pause(release_id: str, as_user: str | None, reason: str, as_json: bool) -> None:
    """Stop the release before its next step (guards keep watching)."""
    _control(release_id, "pause", as_user, reason, as_json)


@release.command()
@click.argument("release_id", callback=require_id)
@as_option
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
@json_option
def resume(release_id: str, as_user: str | None, reason: str, as_json: bool) -> None:
    """Continue a paused release (re-runs an inconclusive check)."""
    _control(release_id, "resume", as_user, reason, as_json)


@release.command()
@click.argument("release_id", callback=require_id)
@as_option
@click.option("--reason", required=True, help="Why (required).")
@json_option
def abort(release_id: str, as_user: str | None, reason: str, as_json: bool) -> None:
    """End the release now; flags it changed are restored."""
    if not reason.strip():
        raise click.BadParameter("give a reason", param_hint="--reason")
    _control(release_id, "abort", as_user, reason, as_json)

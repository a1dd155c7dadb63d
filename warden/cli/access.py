"""`warden access`: roles and permissions change only when the access committee approves."""

from __future__ import annotations

import click

from warden.cli.common import (
    as_option,
    build_request,
    emit_json,
    info,
    json_option,
    require_id,
    run,
    session,
)
from warden.cli.render import table, when
from warden.models.governance import AccessChangeRequest, AccessDecision


@click.group()
def access() -> None:
    """Roles and permissions: they change only when the access committee approves."""


@access.command(name="request")
@click.option("--user", "subject", required=True, help="Whose access changes.")
@click.option(
    "--role",
    required=True,
    help="release-manager, operator, viewer, admin, committee-member:<committee>.",
)
@click.option("--revoke", is_flag=True, help="Take the role away instead of granting it.")
@click.option("--reason", required=True)
@as_option
@json_option
def access_request(
    subject: str, role: str, revoke: bool, reason: str, as_user: str | None, as_json: bool
) -> None:
    """Ask the access committee to grant (or --revoke) a role."""
    s = session()
    actor = s.actor(as_user, "access.request")
    request = build_request(
        AccessChangeRequest,
        {"user": "--user", "role": "--role", "reason": "--reason", "requested_by": "--as"},
        kind="revoke" if revoke else "grant",
        user=subject,
        role=role,
        reason=reason,
        requested_by=actor.name,
        dev_identity=actor.dev_identity,
    )
    change_id = run(s.access().request(request))
    if as_json:
        emit_json({"change_id": change_id})
    else:
        click.echo(change_id)
        info(f"waiting for the access committee: `warden access approve {change_id} --as <member>`")


def _decide(
    change_id: str, as_user: str | None, comment: str, as_json: bool, approve: bool
) -> None:
    s = session()
    actor = s.actor(as_user, "access.decide")
    decision = build_request(
        AccessDecision,
        {"user": "--as", "comment": "--comment"},
        user=actor.name,
        comment=comment,
        dev_identity=actor.dev_identity,
    )
    outcome = run(s.access().decide(change_id, decision, approve))
    if as_json:
        emit_json(outcome)
    else:
        click.echo(
            f"{change_id}: {outcome.message} — {outcome.approvals}/{outcome.quorum} approvals, "
            f"{outcome.rejections} rejection(s); {outcome.state}"
        )


@access.command(name="approve")
@click.argument("change_id", callback=require_id)
@as_option
@click.option("--comment", default="")
@json_option
def access_approve(change_id: str, as_user: str | None, comment: str, as_json: bool) -> None:
    """Approve an access change (committee members; not the requester nor the person it changes)."""
    _decide(change_id, as_user, comment, as_json, approve=True)


@access.command(name="reject")
@click.argument("change_id", callback=require_id)
@as_option
@click.option("--comment", required=True)
@json_option
def access_reject(change_id: str, as_user: str | None, comment: str, as_json: bool) -> None:
    """Reject an access change; nothing is changed."""
    _decide(change_id, as_user, comment, as_json, approve=False)


@access.command(name="status")
@click.argument("change_id", callback=require_id)
@json_option
def access_status(change_id: str, as_json: bool) -> None:
    """One access change: who asked, who decided, its state."""
    s = session()
    s.actor(None, "access.view")
    status = run(s.access().status(change_id))
    if as_json:
        emit_json(status)
        return
    click.echo(f"{status.change_id}: {status.state} — {status.message or status.reason}")
    click.echo(
        f"  requested by {status.requested_by} at {when(status.requested_at)}; committee "
        f"{status.committee} ({status.quorum} of {', '.join(status.members)})"
    )
    click.echo(
        f"  approvals: {', '.join(status.approvals) or 'none'}; "
        f"rejections: {', '.join(status.rejections) or 'none'}"
    )


@access.command(name="list")
@json_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def access_list(as_json: bool, limit: int) -> None:
    """Access changes, newest first, with their outcome: waiting, applied, rejected, expired."""
    s = session()
    s.actor(None, "access.view")
    rows = run(s.access().list(limit=limit))
    if as_json:
        emit_json(rows)
        return
    click.echo(
        table(
            [
                [
                    r.change_id,
                    r.kind or "-",
                    r.user or "-",
                    r.role or "-",
                    r.requested_by or "-",
                    r.outcome,
                    when(r.started_at),
                ]
                for r in rows
            ],
            ["change", "kind", "user", "role", "requested by", "outcome", "requested"],
        )
        if rows
        else "no access changes yet"
    )

"""`warden governance`: validate the governance file, see effective roles, get it signed off."""

from __future__ import annotations

from pathlib import Path

import click

from warden.cli.common import (
    Access,
    as_option,
    build_request,
    emit_json,
    info,
    json_option,
    run,
    session,
)
from warden.cli.render import table, when
from warden.models.governance import AccessChangeRequest, AccessChangeStatus
from warden.services.governance import GovernanceService


@click.group()
def governance() -> None:
    """The governance file: validate it, see effective roles, get its version signed off."""


@governance.command(name="validate")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def governance_validate(path: Path | None) -> None:
    """Check a governance file (default: WARDEN_GOVERNANCE_FILE)."""
    s = session()
    service = GovernanceService(s.settings)  # a file on this machine, whatever else is configured
    document = service.load(path)
    shown = path or s.settings.governance_file
    click.echo(
        f"{shown}: valid, version {document.version}, {len(document.users)} users, "
        f"committees {', '.join(c.name for c in document.committees)} "
        f"(sha256 {document.digest()[:12]})"
    )


@governance.command(name="show")
@json_option
def governance_show(as_json: bool) -> None:
    """Users with their effective roles (file + approved access changes) and the sign-off state."""
    s = session()
    s.actor(None, "governance.view")
    view = s.governance().show()
    if as_json:
        emit_json(view)
        return
    signoff = view.signoff
    click.echo(
        f"version {view.version} (sha256 {view.digest[:12]}): "
        + (
            f"signed off by {', '.join(signoff.approved_by)} at {when(signoff.signed_at)}"
            if signoff
            else "NOT signed off — production releases will not start"
        )
    )
    if signoff:
        click.echo(
            f"  requested by {signoff.requested_by}; approved by {', '.join(signoff.approved_by)}; "
            f"signed off {when(signoff.signed_at)}; change {signoff.change_id}"
        )
    click.echo("")
    click.echo(table([[u.user, ", ".join(u.roles) or "-"] for u in view.users], ["user", "roles"]))
    click.echo("")
    if not view.grants:
        click.echo("access changes applied: none (every role above is the file's own)")
        return
    click.echo("access changes applied, in order:")
    click.echo(
        table(
            [
                [
                    g.user,
                    ("grant " if g.grant else "revoke ") + g.role,
                    g.requested_by,
                    ", ".join(g.approved_by),
                    when(g.applied_at),
                    g.change_id,
                ]
                for g in view.grants
            ],
            ["user", "change", "requested by", "approved by", "applied at", "change id"],
        )
    )


async def _request_signoff(
    access: Access, request: AccessChangeRequest, wait: bool
) -> AccessChangeStatus | None:
    change_id = await access.request(request)
    click.echo(change_id)
    if not wait:
        info(f"waiting for the committee: `warden access approve {change_id} --as <member>`")
        return None
    return await access.wait(change_id)


@governance.command(name="signoff")
@click.option("--reason", required=True)
@as_option
@click.option("--wait", is_flag=True, help="Wait for the committee's decision.")
def governance_signoff(reason: str, as_user: str | None, wait: bool) -> None:
    """Ask the access committee to sign off the governance file's current version."""
    s = session()
    actor = s.actor(as_user, "access.request")
    request = build_request(
        AccessChangeRequest,
        {"reason": "--reason", "requested_by": "--as"},
        kind="config-signoff",
        reason=reason,
        requested_by=actor.name,
        dev_identity=actor.dev_identity,
    )
    status = run(_request_signoff(s.access(), request, wait))
    if status is not None:
        click.echo(f"{status.change_id}: {status.state} — {status.message}")
        raise SystemExit(0 if status.state == "applied" else 1)

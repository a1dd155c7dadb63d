"""`warden flags`, `warden access`, `warden governance`, `warden token`, `warden audit`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from warden.cli.common import (
    as_option,
    build_request,
    emit_json,
    fail,
    identity,
    info,
    json_option,
    load_settings,
    require_id,
    run,
)
from warden.cli.render import table, when
from warden.settings import Settings


async def _client(settings: Settings) -> Any:
    from warden.runtime.background import ensure_worker
    from warden.runtime.client import connect

    client = await connect(settings)
    await ensure_worker(client, settings)
    return client


# -- flags: the kill switch ------------------------------------------------------------------


@click.group()
def flags() -> None:
    """Feature flags: show them, and the operator's audited kill switch."""


def _change(
    flag: str, env: str, percent: int, as_user: str | None, reason: str, as_json: bool
) -> None:
    from warden.models.flags import FlagOperation
    from warden.operations import FlagService

    settings = load_settings()
    user, dev_identity = identity(settings, as_user)
    if not reason.strip():
        fail("give a --reason (it is recorded in the audit trail)")
    op = build_request(
        FlagOperation,
        {
            "flag": "FLAG",
            "environment": "--env",
            "percent": "--percent",
            "user": "--as",
            "reason": "--reason",
        },
        flag=flag,
        environment=env,
        percent=percent,
        user=user,
        reason=reason,
        dev_identity=dev_identity,
    )

    async def go() -> Any:
        service = FlagService(await _client(settings), settings)
        result = await service.change(op)
        return result, await service.releases_touching(flag, env)

    result, touching = run(go())
    if as_json:
        emit_json(result)
    else:
        before = result.before.percent if result.before else "?"
        state = "changed" if result.changed else "already there, nothing changed"
        click.echo(f"{flag} in {env}: {before}% → {percent}% ({state}); recorded as {user}")
    for release_id in touching:
        info(
            f"warning: running release {release_id} ramps {flag} in {env}; its next step or its rollback "
            f"will change the flag again — pause or abort it (`warden release abort {release_id} ...`)"
        )


def _check_envs(envs: tuple[str, ...]) -> None:
    """Environment names become flag file names: only plain names, never a path."""
    import re

    from warden.models.plan import NAME_PATTERN

    for env in envs:
        if not re.fullmatch(NAME_PATTERN, env):
            fail(
                f"--env {env!r} is not an environment name (lowercase letters, digits and '-', e.g. pilot)"
            )


def _check_flag_keys(keys: list[str]) -> None:
    import re

    from warden.models.flags import FLAG_KEY_PATTERN

    for key in keys:
        if not re.fullmatch(FLAG_KEY_PATTERN, key):
            fail(f"--flag {key!r} is not a flag key (letters, digits and . _ -, e.g. ai.solutions)")


_env = click.option("--env", "env", required=True, help="Flag environment (e.g. production).")
_reason = click.option(
    "--reason", required=True, help="Why (required; recorded in the audit trail)."
)


@flags.command()
@click.argument("flag")
@_env
@as_option
@_reason
@json_option
def disable(flag: str, env: str, as_user: str | None, reason: str, as_json: bool) -> None:
    """Switch a flag off (0%) in one environment, now."""
    _change(flag, env, 0, as_user, reason, as_json)


@flags.command()
@click.argument("flag")
@_env
@as_option
@_reason
@json_option
def enable(flag: str, env: str, as_user: str | None, reason: str, as_json: bool) -> None:
    """Switch a flag fully on (100%) in one environment."""
    _change(flag, env, 100, as_user, reason, as_json)


@flags.command(name="set")
@click.argument("flag")
@_env
@click.option(
    "--percent",
    required=True,
    type=click.IntRange(0, 100),
    help="Share of traffic served the flag.",
)
@as_option
@_reason
@json_option
def set_percent(
    flag: str, env: str, percent: int, as_user: str | None, reason: str, as_json: bool
) -> None:
    """Serve a flag to a percentage of traffic in one environment."""
    _change(flag, env, percent, as_user, reason, as_json)


@flags.command()
@click.option(
    "--env", "envs", multiple=True, help="Environment(s); default dev, staging, pilot, production."
)
@click.option("--flag", "flag_keys", multiple=True, help="Only these flags.")
@json_option
def show(envs: tuple[str, ...], flag_keys: tuple[str, ...], as_json: bool) -> None:
    """The current state of flags, read where the workers are."""
    from warden.operations import FlagService

    _check_envs(envs)
    _check_flag_keys(list(flag_keys))
    settings = load_settings()
    environments = list(envs) or ["dev", "staging", "pilot", "production"]

    async def go() -> Any:
        service = FlagService(await _client(settings), settings)
        return await service.read(environments, list(flag_keys))

    states = run(go())
    if as_json:
        emit_json(states)
        return
    rows = [
        [
            s.environment,
            s.flag,
            ("on" if s.enabled else "off") if s.exists else "missing",
            "-" if s.percent is None else f"{s.percent}%",
        ]
        for s in states
    ]
    click.echo(table(rows, ["env", "flag", "state", "served"]) if rows else "no flags")


@flags.command()
@click.option(
    "--env",
    "envs",
    multiple=True,
    help="Environment(s) to create; default dev, staging, pilot, production.",
)
@click.option(
    "--flag",
    "flag_specs",
    multiple=True,
    metavar="KEY[=PERCENT]",
    help="Flag to create (default 0%).",
)
def init(envs: tuple[str, ...], flag_specs: tuple[str, ...]) -> None:
    """Create flagd flag files for the embedded flag backend (existing files are left alone)."""
    from warden.flagstore.flagd_file import flag_file, init_flag_file

    settings = load_settings()
    if settings.flag_backend != "flagd-file":
        fail(
            "`warden flags init` creates flagd-file flag files; WARDEN_FLAG_BACKEND is "
            + settings.flag_backend
        )
    _check_envs(envs)
    specs: dict[str, int] = {}
    for spec in flag_specs or ("ai.solutions",):
        key, _, percent = spec.partition("=")
        _check_flag_keys([key])
        try:
            specs[key] = int(percent) if percent else 0
        except ValueError:
            fail(f"--flag {spec!r}: the percentage must be a whole number")
        if not 0 <= specs[key] <= 100:
            fail(f"--flag {spec!r}: the percentage must be 0-100")
    for env in envs or ("dev", "staging", "pilot", "production"):
        path = flag_file(settings.flags_path, env)
        created = init_flag_file(path, specs)
        click.echo(f"{path}: {'created' if created else 'exists, left alone'}")


# -- access changes and governance ----------------------------------------------------------


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
    from warden.models.governance import AccessChangeRequest
    from warden.operations import AccessService

    settings = load_settings()
    user, dev_identity = identity(settings, as_user)
    request = build_request(
        AccessChangeRequest,
        {"user": "--user", "role": "--role", "reason": "--reason", "requested_by": "--as"},
        kind="revoke" if revoke else "grant",
        user=subject,
        role=role,
        reason=reason,
        requested_by=user,
        dev_identity=dev_identity,
    )

    async def go() -> str:
        return await AccessService(await _client(settings), settings).request(request)

    change_id = run(go())
    if as_json:
        emit_json({"change_id": change_id})
    else:
        click.echo(change_id)
        info(f"waiting for the access committee: `warden access approve {change_id} --as <member>`")


def _access_decide(
    change_id: str, as_user: str | None, comment: str, as_json: bool, approve: bool
) -> None:
    from warden.models.governance import AccessDecision
    from warden.operations import AccessService

    settings = load_settings()
    user, dev_identity = identity(settings, as_user)
    decision = build_request(
        AccessDecision,
        {"user": "--as", "comment": "--comment"},
        user=user,
        comment=comment,
        dev_identity=dev_identity,
    )

    async def go() -> Any:
        return await AccessService(await _client(settings), settings).decide(
            change_id, decision, approve
        )

    status = run(go())
    if as_json:
        emit_json(status)
    else:
        click.echo(
            f"{change_id}: {len(status.approvals)}/{status.quorum} approvals, {len(status.rejections)} rejections"
        )


@access.command(name="approve")
@click.argument("change_id", callback=require_id)
@as_option
@click.option("--comment", default="")
@json_option
def access_approve(change_id: str, as_user: str | None, comment: str, as_json: bool) -> None:
    """Approve an access change (committee members; not the requester nor the person it changes)."""
    _access_decide(change_id, as_user, comment, as_json, approve=True)


@access.command(name="reject")
@click.argument("change_id", callback=require_id)
@as_option
@click.option("--comment", required=True)
@json_option
def access_reject(change_id: str, as_user: str | None, comment: str, as_json: bool) -> None:
    """Reject an access change; nothing is changed."""
    _access_decide(change_id, as_user, comment, as_json, approve=False)


@access.command(name="status")
@click.argument("change_id", callback=require_id)
@json_option
def access_status(change_id: str, as_json: bool) -> None:
    """One access change: who asked, who decided, its state."""
    from warden.operations import AccessService

    settings = load_settings()

    async def go() -> Any:
        return await AccessService(await _client(settings), settings).status(change_id)

    status = run(go())
    if as_json:
        emit_json(status)
        return
    click.echo(f"{status.change_id}: {status.state} — {status.message or status.reason}")
    click.echo(
        f"  requested by {status.requested_by} at {when(status.requested_at)}; committee {status.committee} "
        f"({status.quorum} of {', '.join(status.members)})"
    )
    click.echo(
        f"  approvals: {', '.join(status.approvals) or 'none'}; rejections: {', '.join(status.rejections) or 'none'}"
    )


@access.command(name="list")
@json_option
def access_list(as_json: bool) -> None:
    """Access changes, newest first."""
    from warden.operations import AccessService

    settings = load_settings()

    async def go() -> Any:
        return await AccessService(await _client(settings), settings).list()

    rows = run(go())
    if as_json:
        emit_json(rows)
        return
    click.echo(
        table(
            [
                [
                    r["change_id"],
                    r["kind"],
                    r["user"] or "-",
                    r["role"] or "-",
                    r["requested_by"],
                    r["status"],
                ]
                for r in rows
            ],
            ["change", "kind", "user", "role", "requested by", "status"],
        )
        if rows
        else "no access changes yet"
    )


@click.group()
def governance() -> None:
    """The governance file: validate it, see effective roles, get its version signed off."""


@governance.command(name="validate")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def governance_validate(path: Path | None) -> None:
    """Check a governance file (default: WARDEN_GOVERNANCE_FILE)."""
    from warden.stores.governance import GovernanceError, load_governance

    settings = load_settings()
    path = path or settings.governance_file
    if path is None:
        fail("give a file or set WARDEN_GOVERNANCE_FILE")
    try:
        document = load_governance(path)
    except GovernanceError as exc:
        fail(str(exc))
    click.echo(
        f"{path}: valid, version {document.version}, {len(document.users)} users, "
        f"committees {', '.join(c.name for c in document.committees)} (sha256 {document.digest()[:12]})"
    )


@governance.command(name="show")
@json_option
def governance_show(as_json: bool) -> None:
    """Users with their effective roles (file + approved access changes) and the sign-off state."""
    from warden.stores.governance import (
        GovernanceError,
        GovernanceStore,
        effective_roles,
        load_governance,
    )

    settings = load_settings()
    if settings.governance_file is None:
        fail("no governance file is configured (WARDEN_GOVERNANCE_FILE)")
    try:
        document = load_governance(settings.governance_file)
    except GovernanceError as exc:
        fail(str(exc))
    store = GovernanceStore(settings.audit_url)
    grants = store.grants()
    signoff = store.signoff_for(document.digest())
    users: list[dict[str, Any]] = [
        {"user": u.name, "roles": sorted(effective_roles(document, grants, u.name))}
        for u in document.users
    ]
    if as_json:
        emit_json(
            {
                "version": document.version,
                "digest": document.digest(),
                "signoff": signoff.model_dump(mode="json") if signoff else None,
                "users": users,
            }
        )
        return
    click.echo(
        f"version {document.version} (sha256 {document.digest()[:12]}): "
        + (
            f"signed off by {', '.join(signoff.approved_by)} at {when(signoff.signed_at)}"
            if signoff
            else "NOT signed off — production releases will not start"
        )
    )
    click.echo(table([[u["user"], ", ".join(u["roles"]) or "-"] for u in users], ["user", "roles"]))


@governance.command(name="signoff")
@click.option("--reason", required=True)
@as_option
@click.option("--wait", is_flag=True, help="Wait for the committee's decision.")
def governance_signoff(reason: str, as_user: str | None, wait: bool) -> None:
    """Ask the access committee to sign off the governance file's current version."""
    from warden.models.governance import AccessChangeRequest
    from warden.operations import AccessService

    settings = load_settings()
    user, dev_identity = identity(settings, as_user)
    request = build_request(
        AccessChangeRequest,
        {"reason": "--reason", "requested_by": "--as"},
        kind="config-signoff",
        reason=reason,
        requested_by=user,
        dev_identity=dev_identity,
    )

    async def go() -> int:
        service = AccessService(await _client(settings), settings)
        change_id = await service.request(request)
        click.echo(change_id)
        if not wait:
            info(f"waiting for the committee: `warden access approve {change_id} --as <member>`")
            return 0
        status = await service.wait(change_id)
        click.echo(f"{change_id}: {status.state} — {status.message}")
        return 0 if status.state == "applied" else 1

    raise SystemExit(run(go()))


@click.group()
def token() -> None:
    """API tokens for the HTTP API (stored only as SHA-256 in the governance file)."""


@token.command(name="new")
@click.option("--user", required=True)
def token_new(user: str) -> None:
    """Make a token: give the token to the user, put the hash in the governance file."""
    from warden.stores.governance import new_token

    secret, digest = new_token()
    click.echo(f"token for {user}: {secret}")
    click.echo(f"governance file:  users: [{{name: {user}, token_sha256: {digest}, roles: [...]}}]")


# -- audit ----------------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """The audit trail: every action on releases, flags and access."""


def _query(
    release: str | None,
    user: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    trace: str | None,
    limit: int,
) -> Any:
    from warden.models.audit import AuditQuery

    return AuditQuery(
        releaseId=release,
        userId=user,
        action=action,
        since=_aware(since),
        until=_aware(until),
        traceId=trace,
        limit=limit,
    )


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


_filters = [
    click.option("--release", help="Only this release id."),
    click.option("--user", help="Only this user."),
    click.option("--action", help="Only this action (e.g. signoff.approval)."),
    click.option("--since", type=click.DateTime(), help="From this time (UTC)."),
    click.option("--until", type=click.DateTime(), help="Up to this time (UTC)."),
    click.option("--trace", help="Only this trace id (replays a release's chain of events)."),
    click.option("--limit", default=100_000, show_default=True, type=click.IntRange(1, 10_000_000)),
]


def _with_filters(fn: Any) -> Any:
    for option in reversed(_filters):
        fn = option(fn)
    return fn


@audit.command()
@_with_filters
@click.option("--csv", "as_csv", is_flag=True, help="CSV (the default is JSON lines).")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
def export(
    release: str | None,
    user: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    trace: str | None,
    limit: int,
    as_csv: bool,
    output: Path | None,
) -> None:
    """Export audit events as CSV or JSON lines."""
    from warden.stores.audit import AuditStore, to_csv

    settings = load_settings()
    events = AuditStore(settings.audit_url).query(
        _query(release, user, action, since, until, trace, limit)
    )
    text = to_csv(events) if as_csv else "".join(e.model_dump_json() + "\n" for e in events)
    if output:
        output.write_text(text)
        info(f"{len(events)} event(s) written to {output}")
    else:
        sys.stdout.write(text)


@audit.command(name="list")
@_with_filters
def audit_list(
    release: str | None,
    user: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    trace: str | None,
    limit: int,
) -> None:
    """Audit events as a table."""
    from warden.stores.audit import AuditStore

    settings = load_settings()
    events = AuditStore(settings.audit_url).query(
        _query(release, user, action, since, until, trace, min(limit, 500))
    )
    click.echo(
        table(
            [[when(e.timestamp), e.userId, e.action, e.result, e.entity] for e in events],
            ["time", "user", "action", "result", "entity"],
        )
        if events
        else "no audit events match"
    )

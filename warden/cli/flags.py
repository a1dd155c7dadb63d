"""`warden flags`: show flags, the operator's audited kill switch, flag files for one machine."""

from __future__ import annotations

import re
from collections.abc import Callable

import click

from warden.cli.common import (
    as_option,
    build_request,
    emit_json,
    fail,
    info,
    json_option,
    run,
    session,
)
from warden.cli.render import table
from warden.models.flags import FLAG_KEY_PATTERN, FlagOperation, FlagOperationResult, FlagState
from warden.models.plan import NAME_PATTERN
from warden.services.flags import FlagService, init_flag_files

DEFAULT_ENVIRONMENTS = ("dev", "staging", "pilot", "production")


@click.group()
def flags() -> None:
    """Feature flags: show them, and the operator's audited kill switch."""


async def _change_and_find_releases(
    service: FlagService, op: FlagOperation
) -> tuple[FlagOperationResult, list[str]]:
    result = await service.change(op)
    return result, await service.releases_touching(op.flag, op.environment)


def _change(
    flag: str, env: str, percent: int, as_user: str | None, reason: str, as_json: bool
) -> None:
    s = session()
    user, dev_identity = s.identity(as_user)
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
    result, touching = run(_change_and_find_releases(s.flags(), op))
    if as_json:
        emit_json(result)
    else:
        before = result.before.percent if result.before else "?"
        state = "changed" if result.changed else "already there, nothing changed"
        click.echo(f"{flag} in {env}: {before}% → {percent}% ({state}); recorded as {user}")
    for release_id in touching:
        info(
            f"warning: running release {release_id} ramps {flag} in {env}; its next step or its "
            f"rollback will change the flag again — pause or abort it "
            f"(`warden release abort {release_id} ...`)"
        )


def _check_envs(envs: tuple[str, ...]) -> None:
    """Environment names become flag file names: only plain names, never a path."""
    for env in envs:
        if not re.fullmatch(NAME_PATTERN, env):
            fail(
                f"--env {env!r} is not an environment name (lowercase letters, digits and '-', "
                "e.g. pilot)"
            )


def _check_flag_keys(keys: list[str]) -> None:
    for key in keys:
        if not re.fullmatch(FLAG_KEY_PATTERN, key):
            fail(f"--flag {key!r} is not a flag key (letters, digits and . _ -, e.g. ai.solutions)")


def kill_switch(fn: Callable[..., None]) -> Callable[..., None]:
    """The arguments every kill-switch command takes: FLAG, --env, --as, --reason, --json."""
    for option in (
        json_option,
        click.option(
            "--reason", required=True, help="Why (required; recorded in the audit trail)."
        ),
        as_option,
        click.option("--env", "env", required=True, help="Flag environment (e.g. production)."),
        click.argument("flag"),
    ):
        fn = option(fn)
    return fn


@flags.command()
@kill_switch
def disable(flag: str, env: str, as_user: str | None, reason: str, as_json: bool) -> None:
    """Switch a flag off (0%) in one environment, now."""
    _change(flag, env, 0, as_user, reason, as_json)


@flags.command()
@kill_switch
def enable(flag: str, env: str, as_user: str | None, reason: str, as_json: bool) -> None:
    """Switch a flag fully on (100%) in one environment."""
    _change(flag, env, 100, as_user, reason, as_json)


@flags.command(name="set")
@kill_switch
@click.option(
    "--percent",
    required=True,
    type=click.IntRange(0, 100),
    help="Share of traffic served the flag.",
)
def set_percent(
    flag: str, env: str, percent: int, as_user: str | None, reason: str, as_json: bool
) -> None:
    """Serve a flag to a percentage of traffic in one environment."""
    _change(flag, env, percent, as_user, reason, as_json)


def flag_state(state: FlagState) -> str:
    """What an operator reads in STATE: `off` when nobody is served the flag (switched off, or
    at 0% after `flags disable`), `on` when some or all traffic is, `missing` when absent."""
    if not state.exists:
        return "missing"
    if not state.enabled or state.percent == 0:
        return "off"
    return "on"


@flags.command()
@click.option(
    "--env",
    "envs",
    multiple=True,
    help="Environment(s); default every environment there are flags for.",
)
@click.option("--flag", "flag_keys", multiple=True, help="Only these flags.")
@click.option(
    "--via-workers",
    is_flag=True,
    help="Read where the workers run (a short workflow), even when this machine reaches the "
    "flag backend itself.",
)
@json_option
def show(
    envs: tuple[str, ...], flag_keys: tuple[str, ...], via_workers: bool, as_json: bool
) -> None:
    """The current state of flags: read here when this machine reaches the flag backend (the
    flag files in WARDEN_FLAGS_DIR, or the Unleash URL), else where the workers are."""
    _check_envs(envs)
    _check_flag_keys(list(flag_keys))
    reading = run(session().flags().read(list(envs), list(flag_keys), via_workers=via_workers))
    if as_json:
        emit_json(reading.states)
        return
    rows = [
        [
            s.environment,
            s.flag,
            flag_state(s),
            "-" if s.percent is None else f"{s.percent}%",
        ]
        for s in reading.states
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
    for path, created in init_flag_files(session().settings, envs or DEFAULT_ENVIRONMENTS, specs):
        click.echo(f"{path}: {'created' if created else 'exists, left alone'}")

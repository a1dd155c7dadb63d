"""`warden flags`: show flags, the operator's audited kill switch, flag files for one machine."""

from __future__ import annotations

import os
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
from warden.cli.release import trace_id_option
from warden.cli.render import table
from warden.models.flags import FLAG_KEY_PATTERN, FlagOperation, FlagState
from warden.models.plan import NAME_PATTERN
from warden.services.flags import add_flags, update_lines
from warden.tracing import traceparent_trace_id

DEFAULT_ENVIRONMENTS = ("dev", "staging", "pilot", "production")


@click.group()
def flags() -> None:
    """Feature flags: show them, and the operator's audited kill switch."""


def _change(
    flag: str,
    env: str,
    percent: int,
    as_user: str | None,
    reason: str,
    as_json: bool,
    trace_id: str | None,
) -> None:
    trace_id = trace_id or traceparent_trace_id(os.environ.get("TRACEPARENT"))
    s = session()
    actor = s.actor(as_user, "flags.change")
    user, dev_identity = actor.name, actor.dev_identity
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
        trace_id=trace_id or "",
    )
    outcome = run(s.flags().kill_switch(op))
    result, touching = outcome.result, outcome.releases_touching
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
    """The arguments every kill-switch command takes: FLAG, --env, --as, --reason, --json,
    --trace-id."""
    for option in (
        click.option(
            "--trace-id",
            callback=trace_id_option,
            help="Trace id to carry through the change and its audit events "
            "(default: the trace id of a W3C TRACEPARENT in the environment).",
        ),
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
def disable(
    flag: str, env: str, as_user: str | None, reason: str, as_json: bool, trace_id: str | None
) -> None:
    """Switch a flag off (0%) in one environment, now."""
    _change(flag, env, 0, as_user, reason, as_json, trace_id)


@flags.command()
@kill_switch
def enable(
    flag: str, env: str, as_user: str | None, reason: str, as_json: bool, trace_id: str | None
) -> None:
    """Switch a flag fully on (100%) in one environment."""
    _change(flag, env, 100, as_user, reason, as_json, trace_id)


@flags.command(name="set")
@kill_switch
@click.option(
    "--percent",
    required=True,
    type=click.IntRange(0, 100),
    help="Share of traffic served the flag.",
)
def set_percent(
    flag: str,
    env: str,
    percent: int,
    as_user: str | None,
    reason: str,
    as_json: bool,
    trace_id: str | None,
) -> None:
    """Serve a flag to a percentage of traffic in one environment."""
    _change(flag, env, percent, as_user, reason, as_json, trace_id)


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
    s = session()
    s.actor(None, "flags.view")
    reading = run(s.flags().read(list(envs), list(flag_keys), via_workers=via_workers))
    if as_json:
        emit_json(reading.states)
        return
    rows = [
        [
            state.environment,
            state.flag,
            flag_state(state),
            "-" if state.percent is None else f"{state.percent}%",
        ]
        for state in reading.states
    ]
    click.echo(table(rows, ["env", "flag", "state", "served"]) if rows else "no flags")


@flags.command()
@click.option(
    "--env",
    "envs",
    multiple=True,
    help="Environment(s); default dev, staging, pilot, production.",
)
@click.option(
    "--flag",
    "flag_specs",
    multiple=True,
    metavar="KEY[=PERCENT]",
    help="Flag to add where it is missing (default 0%); default ai.solutions.",
)
def init(envs: tuple[str, ...], flag_specs: tuple[str, ...]) -> None:
    """Create flagd flag files for the embedded flag backend, or add the missing flags to the
    files that exist; a flag a file already has is left alone, and so is every other flag."""
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
    _add(envs or DEFAULT_ENVIRONMENTS, specs)


@flags.command()
@click.argument("flag")
@click.option(
    "--env", "envs", multiple=True, required=True, help="Environment(s) whose file gets the flag."
)
@click.option(
    "--percent",
    default=0,
    show_default=True,
    type=click.IntRange(0, 100),
    help="What it serves once added: the percentage the service serves now.",
)
def add(flag: str, envs: tuple[str, ...], percent: int) -> None:
    """Add one flag to flagd flag files where it is missing (a flag already there is left alone)."""
    _check_envs(envs)
    if not re.fullmatch(FLAG_KEY_PATTERN, flag):
        fail(f"{flag!r} is not a flag key (letters, digits and . _ -, e.g. ai.solutions)")
    _add(envs, {flag: percent})


def _add(envs: tuple[str, ...], specs: dict[str, int]) -> None:
    """flag files are written where this command runs: with the flag change permission."""
    s = session()
    s.local_only("`warden flags init` and `warden flags add`")
    s.actor(None, "flags.change")
    for line in update_lines(add_flags(s.settings, dict.fromkeys(envs), specs)):
        click.echo(line)

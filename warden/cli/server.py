"""`warden server`, `warden worker`, `warden demo`: running Release Warden on one machine."""

from __future__ import annotations

import click

from warden.cli.common import fail, info, session
from warden.settings import Settings


@click.group(invoke_without_command=True)
@click.option("--ui/--headless", default=True, show_default=True, help="Serve the Temporal Web UI.")
@click.pass_context
def server(ctx: click.Context, ui: bool) -> None:
    """Run the embedded Temporal dev server (loopback only, state in <state dir>/temporal.db)."""
    if ctx.invoked_subcommand is not None:
        return
    from warden.runtime import devserver

    settings = session().settings
    if not settings.embedded:
        fail(
            f"WARDEN_TEMPORAL_ADDRESS is set ({settings.temporal_address}); `warden server` runs the embedded server only"
        )
    info(
        f"Temporal dev server on {settings.dev_server_address}, state in {settings.resolved_state_dir / 'temporal.db'}"
    )
    if ui:
        info(f"Web UI: http://127.0.0.1:{settings.dev_server_ui_port}")
    try:
        code = devserver.run_foreground(settings, ui=ui)
    except devserver.DevServerError as exc:
        fail(str(exc), 3)
    raise SystemExit(code)


@server.command()
def stop() -> None:
    """Stop the background server and worker that the CLI started."""
    from warden.runtime import devserver
    from warden.runtime.background import stop_worker

    settings = session().settings
    worker_stopped = stop_worker(settings)
    server_stopped = devserver.stop(settings)
    click.echo(
        f"worker: {'stopped' if worker_stopped else 'not running'}; server: {'stopped' if server_stopped else 'not running'}"
    )


@server.command(name="status")
def server_status() -> None:
    """Is the embedded server listening, is a background worker running, and with what settings?"""
    from warden.runtime import devserver
    from warden.runtime.background import (
        background_worker_pid,
        recorded_worker_settings,
        settings_differ,
    )

    settings = session().settings
    listening = devserver.is_listening("127.0.0.1", settings.dev_server_port)
    pid = background_worker_pid(settings)
    click.echo(
        f"server {settings.dev_server_address}: {'listening' if listening else 'not running'}"
    )
    click.echo(f"Web UI: {_ui_line(settings, listening)}")
    click.echo(f"background worker: {f'pid {pid}' if pid else 'not running'}")
    recorded = recorded_worker_settings(settings) if pid else None
    if recorded:
        shown = {k: v for k, v in recorded.items() if v}
        click.echo("  runs with: " + ", ".join(f"WARDEN_{k.upper()}={v}" for k, v in shown.items()))
        changed = settings_differ(settings)
        if changed:
            names = ", ".join("WARDEN_" + name.upper() for name in changed)
            click.echo(f"  differs from this shell in {names}: the next command restarts it")
    raise SystemExit(0 if listening else 3)


def _ui_line(settings: Settings, listening: bool) -> str:
    from warden.runtime import devserver

    url = devserver.ui_url(settings)
    if not listening:
        return (
            f"not running; the next warden command that needs Temporal starts the server with "
            f"the UI on {url} (WARDEN_DEV_SERVER_UI_PORT), or run `warden server`"
        )
    served = devserver.served_ui(settings)
    if served:
        return served
    if devserver.is_listening("127.0.0.1", settings.dev_server_ui_port):
        return f"{url} answers, but not for a server warden started here"
    return (
        "not served (this server runs headless); `warden server stop`, then `warden server` "
        f"serves it on {url} (WARDEN_DEV_SERVER_UI_PORT)"
    )


@click.command()
def worker() -> None:
    """Run a worker (same as `python worker.py`)."""
    from warden.runtime import worker as worker_module

    worker_module.main()


@click.command()
@click.option(
    "--keep", is_flag=True, help="Leave the server, UI, worker and sample services up until Ctrl-C."
)
@click.option(
    "--scenario",
    type=click.Choice(["all", "good", "contract", "guard"]),
    default="all",
    show_default=True,
    help="good: promoted end to end; contract: a bad build fails its contract tests; guard: a bad build trips a guard mid-ramp in pilot.",
)
def demo(keep: bool, scenario: str) -> None:
    """The whole story end to end on an embedded server, then exit 0."""
    from warden.demo import run_demo

    raise SystemExit(run_demo(keep=keep, scenario=scenario))

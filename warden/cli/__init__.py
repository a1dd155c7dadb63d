"""`warden`: the command line for release managers, committee members, operators and CI.

Exit codes: 0 promoted (or command succeeded); 1 the release ended without promotion;
2 invalid input (bad plan, unknown release, refused request, bad arguments);
3 Temporal (or a worker) not reachable.
"""

from __future__ import annotations

import os
import sys

import click
from pydantic import ValidationError
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from warden import tracing
from warden.cli.access import access
from warden.cli.api import api
from warden.cli.audit import audit
from warden.cli.common import EXIT_CODES, EXIT_INVALID, EXIT_UNAVAILABLE, PENDING_WARNINGS
from warden.cli.flags import flags
from warden.cli.governance import governance
from warden.cli.plan import plan
from warden.cli.release import release
from warden.cli.replay import replay
from warden.cli.report import governance_review_schedule, report
from warden.cli.server import demo, server, worker
from warden.cli.token import token
from warden.errors import WardenError
from warden.models.plan import PlanError, format_validation_error


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="release-warden", prog_name="warden")
def cli() -> None:
    """Release Warden: staged releases that prove themselves safe at every stage."""


for command in (
    plan,
    release,
    flags,
    access,
    governance,
    token,
    audit,
    replay,
    server,
    worker,
    api,
    demo,
):
    cli.add_command(command)
cli.add_command(report)
governance.add_command(governance_review_schedule)


def main(argv: list[str] | None = None) -> None:
    code = run_cli(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal client's native threads must not race interpreter shutdown (it can abort the
    # process after the work is done); leave without finalizing, the output already flushed.
    os._exit(code)


def run_cli(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code; every error becomes one readable line."""
    PENDING_WARNINGS.clear()
    code = _run(argv)
    tracing.flush()  # the command's spans, before the process leaves without finalizing
    if code in (0, 1):  # it acted: say what the user should know about how
        for warning in PENDING_WARNINGS:
            click.echo(f"warden: warning: {warning}", err=True)
    return code


def _run(argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="warden", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_INVALID)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("warden: interrupted", err=True)
        code = 130
    except (
        _NoArgsIsHelp
    ) as exc:  # `warden release` alone: its help, folded into one line, says too much
        path = exc.ctx.command_path if exc.ctx else "warden"
        code = _report(f"missing command: {path} COMMAND (see `{path} --help`)", EXIT_INVALID)
    except click.ClickException as exc:  # usage errors, bad parameters
        code = _report(exc.format_message().replace("\n", " "), EXIT_INVALID)
    except PlanError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        code = EXIT_INVALID
    except WardenError as exc:
        code = _report(str(exc), EXIT_CODES[exc.kind])
    except (
        ValidationError
    ) as exc:  # a request model refused a value the command did not check first
        code = _report("; ".join(format_validation_error(exc)), EXIT_INVALID)
    except RPCError as exc:
        unavailable = exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
        code = _report(
            f"Temporal refused the request: {exc.message}",
            EXIT_UNAVAILABLE if unavailable else EXIT_INVALID,
        )
    except WorkflowQueryFailedError as exc:
        code = _report(f"the query failed: {exc.message}", EXIT_INVALID)
    except OSError as exc:  # a file named on the command line cannot be read or written
        code = _report(_os_problem(exc), EXIT_INVALID)
    except KeyboardInterrupt:
        click.echo("warden: interrupted", err=True)
        code = 130
    return code if isinstance(code, int) else 0


class _NeverRaised(click.UsageError):
    pass


# click >= 8.2 raises this for a group called without a command (older click prints the help)
_NoArgsIsHelp: type[click.UsageError] = getattr(click.exceptions, "NoArgsIsHelpError", _NeverRaised)


def _os_problem(exc: OSError) -> str:
    """`cannot use x.csv: No such file or directory`, not `[Errno 2] No such file ...: 'x.csv'`."""
    if exc.filename is None or not exc.strerror:
        return str(exc)
    return f"cannot use {exc.filename}: {exc.strerror}"


def _report(message: str, code: int) -> int:
    click.echo(f"warden: error: {' '.join(message.splitlines())}", err=True)
    return code

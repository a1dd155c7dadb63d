"""`warden replay`: replay histories against the current workflow code, and print what happened.

Exit 0 when every history replays; 1 when one diverged (the workflow and its first diverging
event are named); 2 for an unknown release or trace id, a malformed trace id or --since.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import click

from warden.cli.common import (
    EXIT_NOT_PROMOTED,
    EXIT_OK,
    fail,
    info,
    json_option,
    run,
    session,
)
from warden.cli.render import table, when
from warden.errors import WardenError
from warden.models.replay import ChainLine, ReplayedWorkflow, ReplayReport
from warden.services.releases import check_trace_id

CHAIN_COLUMNS = [
    "time",
    "source",
    "workflow",
    "event",
    "kind",
    "summary",
    "user",
    "request_id",
    "trace_id",
]
WORKFLOW_COLUMNS = [
    "workflow",
    "type",
    "run_id",
    "events",
    "result",
    "event_id",
    "event_type",
    "problem",
]


def _chain_row(line: ChainLine) -> list[str]:
    return [
        when(line.at),
        line.source,
        line.workflow_id or "-",
        str(line.event_id) if line.event_id is not None else "-",
        line.kind,
        line.summary,
        line.user or "-",
        line.request_id or "-",
        line.trace_id or "-",
    ]


def _workflow_row(w: ReplayedWorkflow) -> list[str]:
    return [
        w.workflow_id,
        w.workflow_type,
        w.run_id,
        str(w.events),
        "deterministic" if w.deterministic else "DIVERGED",
        str(w.event_id) if w.event_id is not None else "-",
        w.event_type or "-",
        w.problem or "-",
    ]


def _csv(rows: list[list[str]], header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _print(report: ReplayReport, *, chain: bool, as_json: bool, as_csv: bool) -> None:
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    if chain:
        rows = [_chain_row(line) for line in report.chain]
        header = CHAIN_COLUMNS
    else:
        rows = [_workflow_row(w) for w in report.workflows]
        header = WORKFLOW_COLUMNS
    if as_csv:
        sys.stdout.write(_csv(rows, header))
    elif chain:
        click.echo(table(rows, header) if rows else "nothing happened")
    else:
        click.echo(table([r[:-1] for r in rows], header[:-1]) if rows else "no workflows")


def _verdict(report: ReplayReport, *, chain: bool, quiet: bool) -> int:
    diverged = [w for w in report.workflows if not w.deterministic]
    for w in diverged:
        info(
            f"warden: {w.workflow_id} ({w.workflow_type}) diverged at event {w.event_id} "
            f"({w.event_type}): {w.problem}"
        )
    if diverged:
        return EXIT_NOT_PROMOTED
    if not quiet:
        where = f" (trace {report.trace_id})" if chain and report.trace_id else ""
        info(f"warden: {len(report.workflows)} workflow(s) replayed, all deterministic{where}")
    return EXIT_OK


@click.command()
@click.argument("release_id", required=False, metavar="[RELEASE_ID]")
@click.option("--trace-id", help="Every workflow carrying this trace id (WardenTraceId).")
@click.option("--all", "everything", is_flag=True, help="Every workflow started since --since.")
@click.option(
    "--since", default=None, help="With --all: how far back (e.g. 30m, 12h, 7d, 2w; default 7d)."
)
@click.option(
    "--history",
    type=click.Path(path_type=Path),
    help="A history file, or a directory of them (e.g. tests/replay/histories).",
)
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@click.option("--quiet", "-q", is_flag=True, help="No summary line on stderr.")
def replay(
    release_id: str | None,
    trace_id: str | None,
    everything: bool,
    since: str | None,
    history: Path | None,
    as_json: bool,
    as_csv: bool,
    quiet: bool,
) -> None:
    """Replay histories against this worker code; print the chain of events in time order.

    \b
      warden replay RELEASE_ID            the release, with its audit rows
      warden replay --trace-id T          every release, kill switch and access change of a trace
      warden replay --all --since 7d      every workflow of the namespace started since then
      warden replay --history PATH        committed history files (CI)

    Exit 0: every history replays; 1: one diverged (named, with its first diverging event);
    2: unknown release or trace id, malformed trace id or --since."""
    from warden.services.replay import ReplayService, parse_since

    modes = [m for m, on in (("RELEASE_ID", release_id is not None), ("--trace-id", trace_id is not None), ("--all", everything), ("--history", history is not None)) if on]  # fmt: skip
    if len(modes) != 1:
        fail("give one of RELEASE_ID, --trace-id T, --all or --history PATH" + (f" (not {' and '.join(modes)})" if modes else ""))  # fmt: skip
    if as_json and as_csv:
        fail("give --json or --csv, not both")
    if since is not None and not everything:
        fail("--since goes with --all")
    if release_id is not None and not release_id.strip():
        fail("RELEASE_ID must not be empty")
    try:
        if trace_id is not None:
            check_trace_id(trace_id)
        span = parse_since(since or "7d") if everything else None
    except WardenError as exc:
        fail(str(exc))
    s = session()
    if history is not None:
        service = ReplayService(None, None, s.settings)
        report = run(service.files(history))
        _print(report, chain=False, as_json=as_json, as_csv=as_csv)
        raise SystemExit(_verdict(report, chain=False, quiet=quiet))
    if s.settings.api_url:
        what = f"GET /traces/{trace_id or '{trace_id}'}"
        fail(
            "warden replay replays with the workers' code on the machine it runs on, not through "
            f"WARDEN_API_URL; ask the API for the chain with {what}"
        )
    s.actor(None, "audit.read")
    service = s.replay()
    if span is not None:
        report = run(service.recent(span))
        chain = False
    elif trace_id is not None:
        report = run(service.trace(trace_id))
        chain = True
    else:
        assert release_id is not None
        report = run(service.release(release_id))
        chain = True
    _print(report, chain=chain, as_json=as_json, as_csv=as_csv)
    raise SystemExit(_verdict(report, chain=chain, quiet=quiet))

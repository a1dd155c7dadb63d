"""Human-readable views of releases for the terminal (JSON output bypasses these)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from warden.models.common import format_time
from warden.models.release import (
    ChecklistKey,
    ItemStatus,
    ReleaseStatus,
    ReleaseSummary,
    StageState,
    StageStatus,
    TimelineEvent,
)

MARKS = {
    ItemStatus.PASSED: "✓",
    ItemStatus.FAILED: "✗",
    ItemStatus.PENDING: "·",
    ItemStatus.NOT_APPLICABLE: "-",
    ItemStatus.WARNING: "!",
}
SHORT = {
    ChecklistKey.CONTRACT: "contract",
    ChecklistKey.FLAGS: "flags",
    ChecklistKey.THRESHOLDS: "metrics",
    ChecklistKey.SIGNOFF: "signoff",
    ChecklistKey.ROLLBACK_PLAN: "rollback",
}


def one_line(text: str, limit: int = 240) -> str:
    """A multi-line message (schemathesis explains a failure over several lines) as one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


#: Detail keys that say why, in the order the details column prefers them.
_WHY_KEYS = ("reason", "comment", "message", "problem", "change")
#: Detail keys that are bookkeeping rather than what happened.
_QUIET_KEYS = frozenset({"requestId", "devIdentity", "postedBy", "trace_id"})


def details_text(details: dict[str, Any], limit: int = 60) -> str:
    """An audit event's details as one short line: its reason (or comment, message, problem)
    first, then the other values as key=value."""
    parts = [str(details[k]) for k in _WHY_KEYS if details.get(k) not in (None, "", [], {})]
    parts += [
        f"{k}={', '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in details.items()
        if k not in _WHY_KEYS and k not in _QUIET_KEYS and v not in (None, "", [], {})
    ]
    return one_line("; ".join(parts), limit) if parts else "-"


def when(value: datetime | None) -> str:
    """A date and time with its zone (UTC), e.g. `2026-11-01 14:30:00 UTC`."""
    return format_time(value) if value else "-"


def clock(value: datetime) -> str:
    """The time of day in UTC, marked as such (`14:30:00Z`), for lines of a timeline."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%H:%M:%SZ")


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def status_text(status: ReleaseStatus, *, events: int = 12) -> str:
    out = [
        f"{status.release_id}  ({status.service} {status.version}, owner {status.owner}, "
        f"started by {status.started_by} at {when(status.started_at)})",
        f"state: {status.state.value}"
        + (f" · stage {status.current_stage}" if status.current_stage else "")
        + (f" · {status.current_step}" if status.current_step else ""),
    ]
    if status.paused and status.pause_reason:
        out.append(f"paused: {status.pause_reason}")
    out.append("")
    rows = [
        [s.name, s.state.value, *[f"{MARKS[s.item(k).status]} {SHORT[k]}" for k in ChecklistKey]]
        for s in status.stages
    ]
    out.append(table(rows, ["stage", "state", *[SHORT[k] for k in ChecklistKey]]))
    for stage in status.stages:
        if stage.state.value in ("pending", "skipped"):
            continue
        out.append("")
        out.extend(stage_text(stage))
    active = [a for a in status.alerts if a.active]
    if active:
        out.append("")
        out.append("active alerts:")
        out.extend(f"  ! {a.stage}/{a.check} since {when(a.since)}: {a.message}" for a in active)
    if status.rollback:
        rb = status.rollback
        out.append("")
        out.append(f"rollback ({rb.state}): {rb.reason}")
        if rb.report:
            for flag in rb.report.restored:
                out.append(f"  restored {flag.flag} in {flag.environment}: {flag.percent}%")
    if status.result:
        out.append("")
        out.append(f"result: {status.result.outcome.value} — {status.result.reason}")
    for report in status.reports:
        out.append(f"{report.kind.value}: {report.headline} — {report.path or report.url}")
    if status.timeline and events:
        out.append("")
        out.append("recent events:")
        out.extend(event_line(e) for e in status.timeline[-events:])
    return "\n".join(out)


def stage_text(stage: StageStatus) -> list[str]:
    lines = [f"{stage.name} ({stage.environment}, {stage.base_url}): {stage.state.value}"]
    for item in stage.checklist:
        if item.status == ItemStatus.NOT_APPLICABLE:
            continue
        evidence = f": {item.evidence}" if item.evidence else ""
        lines.append(f"  [{MARKS[item.status]}] {item.title}{evidence}")
    if stage.smoke:
        lines.append(f"  smoke: {stage.smoke.summary()}")
    if stage.contract and not stage.contract.passed:
        for failure in stage.contract.failures[:10]:
            lines.append(f"  ✗ {failure.operation} [{failure.check}]: {one_line(failure.message)}")
            if failure.curl:
                lines.append(f"      {failure.curl}")
        if stage.contract.junit_report:
            lines.append(f"  junit: {stage.contract.junit_report}")
    if stage.flag_steps:
        steps = ", ".join(f"{s.flag} {s.percent}% ({s.state})" for s in stage.flag_steps)
        lines.append(f"  flag steps: {steps}")
    if stage.guards:
        ended = stage.state not in (StageState.RUNNING, StageState.PENDING)
        lines.append(f"  guards{' finished' if ended else ''}: {stage.guards[-1].summary()}")
    if stage.signoff:
        gate = stage.signoff
        decided = (
            ", ".join(
                f"{d.user} {'approved' if d.approve else 'rejected'}"
                + (f" ({d.comment})" if d.comment else "")
                for d in gate.decisions
            )
            or "none yet"
        )
        lines.append(
            f"  sign-off: {len(gate.approvals)}/{gate.quorum} approvals from {', '.join(gate.members)}; "
            f"decisions: {decided}; deadline {when(gate.deadline_at)}"
            + (f"; {gate.outcome}" if gate.outcome else "")
        )
    if stage.go_no_go:
        report = stage.go_no_go
        lines.append(f"  go/no-go: {report.headline} — {report.path or report.url}")
    if stage.failure:
        lines.append(f"  failure: {stage.failure}")
    return lines


def event_line(event: TimelineEvent) -> str:
    where = f"{event.stage:<10} " if event.stage else " " * 11
    return f"  {clock(event.at)} {where}{event.message}"


def step_line(status: ReleaseStatus, *, still: bool = False) -> str:
    """What the release does now, as a progress line (`still` when nothing happened for a while)."""
    where = f"{status.current_stage:<10} " if status.current_stage else " " * 11
    now = clock(datetime.now(UTC))
    return f"  {now} {where}{'still ' if still else ''}{status.current_step or status.state.value}"


def list_text(rows: list[ReleaseSummary]) -> str:
    if not rows:
        return "no releases yet (start one with `warden release start plan.yaml`)"
    return table(
        [
            [r.release_id, r.service, r.version, r.state, r.stage or "-", when(r.started_at)]
            for r in rows
        ],
        ["release", "service", "version", "state", "stage", "started"],
    )


def junit_xml(status: ReleaseStatus) -> str:
    """The release's checklist as JUnit XML: a suite per stage, a case per checklist item."""
    suites = ET.Element("testsuites", name=status.release_id)
    for stage in status.stages:
        items = [i for i in stage.checklist if i.status != ItemStatus.NOT_APPLICABLE]
        failures = sum(1 for i in items if i.status == ItemStatus.FAILED)
        skipped = sum(1 for i in items if i.status == ItemStatus.PENDING)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{status.release_id}.{stage.name}",
            tests=str(len(items)),
            failures=str(failures),
            skipped=str(skipped),
        )
        for item in items:
            case = ET.SubElement(
                suite, "testcase", classname=f"{status.service}.{stage.name}", name=item.key.value
            )
            if item.status == ItemStatus.FAILED:
                ET.SubElement(case, "failure", message=item.evidence[:500]).text = item.evidence
            elif item.status == ItemStatus.PENDING:
                ET.SubElement(case, "skipped", message="not reached")
            elif item.status == ItemStatus.WARNING:
                ET.SubElement(case, "system-out").text = f"warning: {item.evidence}"
            elif item.evidence:
                ET.SubElement(case, "system-out").text = item.evidence
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )

"""Markdown and HTML from one document per report, so both carry the same facts.

A report becomes a list of blocks (headings, paragraphs, bullet lists, tables, charts); the
Markdown writer prints the text blocks, the HTML writer the same blocks plus the charts, drawn
with matplotlib where a person would rather look than read (guard measurements against their
thresholds over the ramp, error trends per day). The JSON form is the report model itself.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from warden.models.common import format_duration
from warden.models.reports import (
    CheckSeries,
    GoNoGoReport,
    GovernanceReview,
    PilotHealthReport,
    ReleaseNotes,
    Retrospective,
)

# -- the document ------------------------------------------------------------------------------


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]
    empty: str = "none"


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    empty: str = "none"


@dataclass
class Chart:
    """A picture of data already shown as text: `series` (lines against thresholds) or `bars`."""

    title: str
    lines: list[CheckSeries] = field(default_factory=list)
    bars: list[tuple[str, float]] = field(default_factory=list)
    ylabel: str = ""


Block = Heading | Para | Bullets | Table | Chart


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _percent(value: int | None) -> str:
    return "absent" if value is None else f"{value}%"


def document(report: Any) -> tuple[str, list[Block]]:
    """The title and blocks of any report."""
    if isinstance(report, GoNoGoReport):
        return _go_no_go(report)
    if isinstance(report, PilotHealthReport):
        return _pilot_health(report)
    if isinstance(report, ReleaseNotes):
        return _release_notes(report)
    if isinstance(report, Retrospective):
        return _retrospective(report)
    if isinstance(report, GovernanceReview):
        return _governance_review(report)
    raise TypeError(f"not a report: {type(report).__name__}")


def _go_no_go(r: GoNoGoReport) -> tuple[str, list[Block]]:
    verdict = "GO" if r.recommendation == "go" else "NO-GO"
    blocks: list[Block] = [
        Para(
            f"**Recommendation: {verdict}** · readiness score **{r.score}/100** "
            f"(threshold {r.threshold}) · stage {r.stage} · {r.service} {r.version} · "
            f"built {_when(r.generated_at)}"
        ),
        Bullets(r.reasons),
        Heading("Blocking items"),
        Table(
            ["condition", "reason", "evidence"],
            [[b.condition, b.reason, "; ".join(b.evidence)] for b in r.blocking],
            empty="none: nothing forces No-go",
        ),
        Heading("Deductions"),
        Table(
            ["rule", "points", "reason", "evidence"],
            [[d.rule, f"-{d.points}", d.reason, "; ".join(d.evidence)] for d in r.deductions],
            empty="none: nothing was deducted",
        ),
        Heading("Pilot KPIs"),
        Table(
            ["KPI", "target", "value", "status", "measured"],
            [[k.check, k.target, _num(k.value), k.status, _when(k.measured_at)] for k in r.kpis],
            empty="no KPI configured or measured",
        ),
        Heading("Issues"),
        Table(
            ["severity", "issue", "evidence", "at"],
            [[i.severity, i.title, i.evidence, _when(i.at)] for i in r.issues],
            empty="no issues",
        ),
        Heading("Rollback records"),
        Table(
            ["release", "at", "reason", "restored"],
            [[b.release_id, _when(b.at), b.reason, ", ".join(b.restored)] for b in r.rollbacks],
            empty="no rollbacks of this release or the service's recent releases",
        ),
        Heading("Guards over the ramp"),
        Table(
            ["stage", "check", "normal", "measurements", "breaches", "last"],
            [
                [
                    g.stage,
                    g.check,
                    g.normal(),
                    str(len(g.points)),
                    str(g.breaches),
                    _num(g.points[-1].value) if g.points else "n/a",
                ]
                for g in r.guards
            ],
            empty="no guard measurements",
        ),
    ]
    if r.guards:
        blocks.append(Chart("Guard measurements against thresholds", lines=r.guards))
    blocks += [
        Heading("Checklist"),
        Table(
            ["stage", "item", "status", "evidence"],
            [[c.stage, c.item, c.status, c.evidence] for c in r.checklist],
        ),
        Heading("Sign-off"),
        Para(r.signoff or "no sign-off state yet"),
    ]
    return f"Go/no-go: {r.release_id} at {r.stage}", blocks


def _pilot_health(r: PilotHealthReport) -> tuple[str, list[Block]]:
    blocks: list[Block] = [
        Para(
            f"Stage {r.stage} · {_when(r.period_start)} → {_when(r.period_end)} · "
            f"release state {r.state or 'unknown'} · built {_when(r.generated_at)}"
        ),
        Heading("Channel connectivity"),
        Table(
            ["check", "measurements", "up", "availability", "last"],
            [
                [c.check, str(c.measurements), str(c.up), _pct(c.availability), _num(c.last_value)]
                for c in r.channels
            ],
            empty="no channel measurements in this period",
        ),
        Heading("API error trends"),
        Table(
            ["day", "check", "samples", "mean", "max", "breaches"],
            [
                [d.day, d.check, str(d.samples), _num(d.mean), _num(d.max), str(d.breaches)]
                for d in r.error_trend
            ],
            empty="no error measurements in this period",
        ),
    ]
    trend = [s for s in r.series if s.check not in {c.check for c in r.channels}]
    if trend:
        blocks.append(Chart("Error measurements against thresholds", lines=trend))
    if r.error_trend:
        blocks.append(
            Chart(
                "Mean error rate per day",
                bars=[(f"{d.day} {d.check}", d.mean or 0.0) for d in r.error_trend],
            )
        )
    blocks += [
        Heading("Governance alerts"),
        Table(
            ["alerts raised", "guard trips", "refusals", "escalations"],
            [[str(r.alerts_raised), str(r.guard_trips), str(r.refusals), str(r.escalations)]],
        ),
        Table(
            ["at", "action", "result", "user", "detail"],
            [[_when(e.at), e.action, e.result, e.user, e.message] for e in r.governance_events],
            empty="no governance events in this period",
        ),
    ]
    return f"Pilot health: {r.release_id} ({r.period_end:%Y-%m-%d})", blocks


def _contact(c: Any) -> list[str]:
    return [c.name, c.role or "-", c.email or "-", c.phone or "-", c.im or "-"]


def _release_notes(r: ReleaseNotes) -> tuple[str, list[Block]]:
    blocks: list[Block] = [
        Para(
            f"{r.service} {r.version} · owner {r.owner} · state {r.state} · "
            f"built {_when(r.generated_at)}"
        ),
        Heading("Description"),
        Para(r.description or "(no description in the plan)"),
        Heading("Flags"),
        Table(
            ["flag", "environment", "before the release", "now"],
            [
                [
                    f.flag,
                    f.environment,
                    _percent(f.before),
                    _percent(f.now) if f.now_known else "not read",
                ]
                for f in r.flags
            ],
            empty="the release changes no flags",
        ),
        Heading("IM channels in scope"),
        Bullets(r.im_channels, empty="none listed"),
        Heading("Contacts"),
        Table(["name", "role", "email", "phone", "IM"], [_contact(c) for c in r.contacts]),
        Heading("Emergency contacts"),
        Table(
            ["name", "role", "email", "phone", "IM"],
            [_contact(c) for c in r.emergency_contacts],
            empty="none listed: add `emergency: true` to a contact",
        ),
        Heading("Gates"),
        Table(["stage", "gate", "result"], [[g.stage, g.gate, g.result] for g in r.gates]),
    ]
    return f"Release notes: {r.service} {r.version}", blocks


def _retrospective(r: Retrospective) -> tuple[str, list[Block]]:
    from datetime import timedelta

    blocks: list[Block] = [
        Para(
            f"**Outcome: {r.outcome}**"
            + (f" — {r.reason}" if r.reason else "")
            + f" · started {_when(r.started_at)} · finished {_when(r.finished_at)} · "
            f"took {format_duration(timedelta(seconds=round(r.duration_s)))} · run {r.run_id}"
        ),
        Heading("Changes"),
        Bullets(r.changes, empty="no flag was changed"),
        Heading("Risks met"),
        Bullets(r.risks, empty="none: no alert, failed gate or refusal"),
        Heading("Approved by"),
        Bullets(r.approvers, empty="nobody (no sign-off was reached)"),
        Heading("Follow-ups"),
        Bullets(r.follow_ups, empty="none"),
    ]
    return f"{r.release_id} ({r.service} {r.version}): {r.outcome}", blocks


def _governance_review(r: GovernanceReview) -> tuple[str, list[Block]]:
    blocks: list[Block] = [
        Para(
            f"{_when(r.period_start)} → {_when(r.period_end)} · {r.events} audit events · "
            f"built {_when(r.generated_at)}"
        ),
        Heading("Governance file"),
        Para(
            f"version {r.governance_version or '(none configured)'}: "
            + (
                f"signed off by {', '.join(r.governance_signed_by)}"
                if r.governance_signed_off
                else "NOT signed off"
            )
        ),
        Heading("Audit log summary"),
        Table(
            ["action", "events"], [[c.key, str(c.count)] for c in r.by_action], empty="no events"
        ),
        Table(
            ["result", "events"], [[c.key, str(c.count)] for c in r.by_result], empty="no events"
        ),
        Table(["user", "events"], [[c.key, str(c.count)] for c in r.by_user], empty="no events"),
        Heading(f"Gaps of {r.gap_minutes} minutes or more with no event", 3),
        Table(
            ["from", "to", "minutes"],
            [[_when(g.start), _when(g.end), f"{g.minutes:g}"] for g in r.gaps],
            empty="no gap",
        ),
        Heading("Permission changes"),
        Table(
            ["at", "change", "status", "actor", "what", "message"],
            [
                [_when(p.at), p.change_id, p.status, p.actor, p.change, p.message]
                for p in r.permission_changes
            ],
            empty="no permission change requested",
        ),
        Heading("Interface health"),
        Para(
            f"contract gate: {r.contract_passed} of {r.contract_runs} run(s) passed "
            f"({_pct(r.contract_pass_rate)})"
        ),
        Table(
            ["guard check", "releases", "samples", "breaches", "mean", "max"],
            [
                [
                    g.check,
                    str(g.releases),
                    str(g.samples),
                    str(g.breaches),
                    _num(g.mean),
                    _num(g.max),
                ]
                for g in r.guard_rates
            ],
            empty="no guard measurements this month",
        ),
        Heading("Errors per day", 3),
        Table(
            ["day", "failed, refused or denied events"],
            [[d.day, str(d.count)] for d in r.errors_per_day],
            empty="no errors",
        ),
    ]
    if r.errors_per_day:
        blocks.append(
            Chart(
                "Failed, refused and denied events per day",
                bars=[(d.day, float(d.count)) for d in r.errors_per_day],
                ylabel="events",
            )
        )
    return f"Governance review {r.month}", blocks


# -- Markdown ------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "-"


def to_markdown(title: str, blocks: Sequence[Block], *, level: int = 1) -> str:
    out = [f"{'#' * level} {title}", ""]
    for block in blocks:
        if isinstance(block, Heading):
            out += [f"{'#' * (block.level + level - 1)} {block.text}", ""]
        elif isinstance(block, Para):
            out += [block.text, ""]
        elif isinstance(block, Bullets):
            out += [f"- {_md_cell(i)}" for i in block.items] or [f"_{block.empty}_"]
            out.append("")
        elif isinstance(block, Table):
            if not block.rows:
                out += [f"_{block.empty}_", ""]
                continue
            out.append("| " + " | ".join(block.header) + " |")
            out.append("|" + "|".join(" --- " for _ in block.header) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
        # charts: their data is in the tables beside them
    return "\n".join(out).rstrip() + "\n"


# -- HTML ----------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1d2330; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #d5d9e0; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f1f3f6; }
.empty { color: #6b7280; font-style: italic; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
"""


def _inline(text: str) -> str:
    """Escape, then the one emphasis the documents use: **bold**."""
    escaped = html.escape(text)
    parts = escaped.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def to_html(title: str, blocks: Sequence[Block]) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            if block.items:
                out.append(
                    "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block.items) + "</ul>"
                )
            else:
                out.append(f'<p class="empty">{html.escape(block.empty)}</p>')
        elif isinstance(block, Table):
            if not block.rows:
                out.append(f'<p class="empty">{html.escape(block.empty)}</p>')
                continue
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Chart):
            out.append(
                f'<figure aria-label="{html.escape(block.title)}">{chart_svg(block)}'
                f"<figcaption>{html.escape(block.title)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def chart_svg(chart: Chart) -> str:
    """The chart as SVG, drawn by matplotlib (no pyplot: safe in a worker's threads)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "release-warden"}):
        if chart.lines:
            rows = len(chart.lines)
            figure = Figure(figsize=(9, 2.4 * rows), layout="constrained")
            axes = figure.subplots(rows, 1, squeeze=False)
            for ax, line in zip(axes[:, 0], chart.lines, strict=True):
                points = [p for p in line.points if p.value is not None]
                times = [p.at for p in points]
                values = [p.value for p in points]
                ax.plot(times, values, marker=".", color="#2563eb", label=line.check)
                bad = [p for p in points if p.breached]
                if bad:
                    ax.scatter(
                        [p.at for p in bad],
                        [p.value for p in bad],
                        color="#dc2626",
                        zorder=3,
                        label="breach",
                    )
                for bound, name in ((line.max, "max"), (line.min, "min")):
                    if bound is not None:
                        ax.axhline(
                            bound,
                            color="#dc2626",
                            linestyle="--",
                            linewidth=1,
                            label=f"{name} {bound:g}",
                        )
                ax.set_title(f"{line.stage} · {line.check}", fontsize=10)
                ax.legend(loc="upper left", fontsize=8)
                ax.tick_params(labelsize=8)
        else:
            figure = Figure(figsize=(9, 3), layout="constrained")
            ax = figure.subplots()
            labels = [label for label, _ in chart.bars]
            ax.bar(range(len(labels)), [v for _, v in chart.bars], color="#2563eb")
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
            if chart.ylabel:
                ax.set_ylabel(chart.ylabel)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.find("<svg") :]


def render(report: Any, fmt: str) -> str:
    """A report as `md`, `json` or `html`."""
    if fmt == "json":
        return str(report.model_dump_json(indent=2)) + "\n"
    title, blocks = document(report)
    return to_html(title, blocks) if fmt == "html" else to_markdown(title, blocks)

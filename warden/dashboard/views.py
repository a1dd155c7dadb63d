"""What the templates show, shaped from the services' models: ages, guard charts as inline SVG,
which actions a user may take on a release."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

from warden.models.metrics import ChecksReport, MetricCheck
from warden.models.plan import ReleasePlan
from warden.models.release import ReleaseStatus, StageState, StageStatus
from warden.stores.governance import Principal


def age(since: datetime | None, now: datetime | None = None) -> str:
    if since is None:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


def version_of(status: ReleaseStatus) -> str:
    """Changes whenever anything in the release's status changes: the page's etag."""
    return hashlib.sha256(status.model_dump_json().encode()).hexdigest()[:16]


@dataclass
class Series:
    name: str
    threshold: str
    svg: str
    last: str
    alerting: bool


@dataclass
class Actions:
    decide: bool = False
    reason_decide: str = ""
    pause: bool = False
    resume: bool = False
    abort: bool = False
    waiting_stage: str | None = None


@dataclass
class StageView:
    stage: StageStatus
    series: list[Series] = field(default_factory=list)
    quorum_left: int = 0


def actions_for(principal: Principal, status: ReleaseStatus) -> Actions:
    """The buttons this user sees; the server checks every one again when pressed."""
    actions = Actions()
    if status.state.ended:
        return actions
    waiting = next((s for s in status.stages if s.state == StageState.WAITING_APPROVAL), None)
    if waiting is not None and waiting.signoff is not None:
        actions.waiting_stage = waiting.name
        decided = {d.user for d in waiting.signoff.decisions}
        if not principal.can("release.decide"):
            actions.reason_decide = "your roles do not include deciding on releases"
        elif principal.name == status.started_by:
            actions.reason_decide = "you started this release, so you cannot approve it"
        elif principal.name not in waiting.signoff.members and not principal.dev_identity:
            actions.reason_decide = f"you are not an approver of {waiting.name}"
        elif principal.name in decided:
            actions.reason_decide = "you have decided on this stage already"
        else:
            actions.decide = True
    actions.pause = principal.can("release.pause") and not status.paused
    actions.resume = principal.can("release.resume") and status.paused
    actions.abort = principal.can("release.abort")
    return actions


def stage_views(status: ReleaseStatus, plan: ReleasePlan | None) -> list[StageView]:
    checks: dict[tuple[str, str], MetricCheck] = {}
    if plan is not None:
        for planned in plan.stages:
            for metric in planned.checks:
                checks[(planned.name, metric.name)] = metric
    views = []
    for stage in status.stages:
        view = StageView(stage)
        reports: list[ChecksReport] = [*([stage.checks] if stage.checks else []), *stage.guards]
        merged: dict[str, list[tuple[datetime, float | None]]] = {}
        alerting: dict[str, bool] = {}
        for report in reports:
            for state in report.checks:
                points = merged.setdefault(state.name, [])
                points += [(m.at, m.value) for m in state.measurements]
                alerting[state.name] = state.alerting
        for name, points in merged.items():
            found = checks.get((stage.name, name))
            points = sorted({p[0]: p for p in points}.values())
            last = next((v for _, v in reversed(points) if v is not None), None)
            view.series.append(
                Series(
                    name=name,
                    threshold=found.condition() if found else "",
                    svg=chart(points, found),
                    last="n/a" if last is None else f"{last:.4g}",
                    alerting=alerting.get(name, False),
                )
            )
        if stage.signoff is not None:
            view.quorum_left = max(0, stage.signoff.quorum - len(stage.signoff.approvals))
        views.append(view)
    return views


def chart(
    points: list[tuple[datetime, float | None]],
    check: MetricCheck | None,
    width: int = 220,
    height: int = 60,
) -> str:
    """A small line chart of the measurements against the check's threshold(s), as inline SVG."""
    values = [(t, v) for t, v in points if v is not None and math.isfinite(v)]
    bounds = [b for b in ((check.max, check.min) if check else ()) if b is not None]
    if not values:
        return (
            f'<svg class="chart" width="{width}" height="{height}" role="img" '
            f'aria-label="no measurements yet"><text x="6" y="{height // 2}">no measurements yet'
            "</text></svg>"
        )
    ys = [v for _, v in values] + bounds
    low, high = min(ys), max(ys)
    if high - low < 1e-12:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.1
    low, high = low - pad, high + pad
    t0 = values[0][0].timestamp()
    span = max(values[-1][0].timestamp() - t0, 1e-9)

    def x(t: datetime) -> float:
        return 4 + (t.timestamp() - t0) / span * (width - 8) if len(values) > 1 else width / 2

    def y(v: float) -> float:
        return height - 4 - (v - low) / (high - low) * (height - 8)

    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values)
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(check.name if check else "measurements")}">'
    ]
    for bound in bounds:
        parts.append(
            f'<line class="threshold" x1="0" x2="{width}" y1="{y(bound):.1f}" y2="{y(bound):.1f}">'
            f"<title>threshold {bound:g}</title></line>"
        )
    parts.append(f'<polyline class="series" fill="none" points="{line}"/>')
    for t, v in values:
        breached = check.breached(v) if check else False
        parts.append(
            f'<circle class="{"bad" if breached else "ok"}" cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5">'
            f"<title>{when(t)}: {v:.4g}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)

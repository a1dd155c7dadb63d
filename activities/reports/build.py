"""Building the reports from what a release recorded. Pure functions over the history, the status
and audit rows: the activities and the on-demand service call the same ones.

The readiness score of the go/no-go report starts at 100 and loses points by the rubric below
(docs/reports.md prints the same table): each deduction says its reason and its evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from activities.reports.sources import MetricRun, ReleaseRecord, failed_counts, series
from warden.models.audit import AuditEvent
from warden.models.flags import FlagState
from warden.models.metrics import ChecksOutcome, MetricCheck
from warden.models.plan import ReleasePlan, Stage
from warden.models.release import ItemStatus, ReleaseStatus, StageState
from warden.models.reports import (
    AuditRef,
    BlockingItem,
    ChannelHealth,
    ChecklistLine,
    CheckSeries,
    ContactLine,
    Count,
    DailyCount,
    DailyValue,
    Deduction,
    FlagLine,
    Gap,
    GateLine,
    GoNoGoReport,
    GovernanceReview,
    GuardRate,
    Issue,
    Kpi,
    PermissionChange,
    PilotHealthReport,
    ReleaseNotes,
    Retrospective,
    RollbackEntry,
)
from warden.stores.audit import PERMISSION_ACTIONS, AuditStore


@dataclass(frozen=True)
class Rule:
    name: str
    points: int
    cap: int
    what: str


#: The rubric of the readiness score: points off per occurrence, at most `cap` per rule.
RUBRIC: tuple[Rule, ...] = (
    Rule("checklist", 20, 40, "a checklist item of the stage that is not green (sign-off aside)"),
    Rule(
        "guard-breach", 10, 30, "a guard check that measured outside its threshold during the ramp"
    ),
    Rule("alert", 10, 20, "an alert raised in the stage during the ramp"),
    Rule("open-alert", 15, 30, "an alert still active when the report is built"),
    Rule("contract", 15, 30, "a stage so far whose contract tests reported failures or errors"),
    Rule(
        "inconclusive", 10, 20, "a metric check run (pre-promotion or guard) that was inconclusive"
    ),
    Rule("rollback-history", 10, 30, "a rollback in one of the service's last N releases"),
    Rule("kpi-missed", 10, 30, "a pilot KPI outside its target"),
    Rule("kpi-no-data", 5, 15, "a pilot KPI with no measurement"),
)
RULES = {r.name: r for r in RUBRIC}


def _now() -> datetime:
    return datetime.now(UTC)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _target(check: MetricCheck | None) -> str:
    return check.condition() if check is not None else "?"


def _deduct(rule: str, items: list[tuple[str, list[str]]]) -> Deduction | None:
    """One deduction for every occurrence of `rule` (capped), with the evidence of each."""
    if not items:
        return None
    spec = RULES[rule]
    points = min(spec.points * len(items), spec.cap)
    reasons = "; ".join(reason for reason, _ in items)
    evidence = [line for _, lines in items for line in lines]
    return Deduction(rule=rule, points=points, reason=reasons, evidence=evidence)


# -- go/no-go ------------------------------------------------------------------------------------


def rollbacks_of_service(
    store: AuditStore, plan: ReleasePlan, release_id: str, lookback: int, before: datetime
) -> list[RollbackEntry]:
    """Rollbacks among the service's last `lookback` releases before this one, from the audit
    trail (a release id is `release-<service>-<version>`; the version is checked against the
    release's own start event, so `support` does not count `support-desk`'s releases)."""
    if lookback <= 0:
        return []
    prefix = f"release-{plan.service}-"
    found: list[RollbackEntry] = []
    finished = [
        e
        for e in store.finished_releases(prefix, before=before, limit=lookback * 4)
        if e.releaseId and e.releaseId != release_id
    ]
    taken = 0
    for event in finished:
        assert event.releaseId is not None
        started = store.events_of(
            datetime.min.replace(tzinfo=UTC),
            before,
            actions=["release.started"],
            release_id=event.releaseId,
            limit=1,
        )
        version = str(started[0].details.get("version", "")) if started else ""
        if started and event.releaseId != f"{prefix}{version}":
            continue
        taken += 1
        for rollback in store.events_of(
            datetime.min.replace(tzinfo=UTC),
            before,
            actions=["rollback.completed"],
            release_id=event.releaseId,
        ):
            restored = [
                f"{r.get('flag')}@{r.get('environment')}={r.get('percent')}%"
                for r in rollback.details.get("restored", [])
                if isinstance(r, dict)
            ]
            found.append(
                RollbackEntry(
                    release_id=event.releaseId,
                    at=rollback.timestamp,
                    reason=str(rollback.details.get("reason", "")),
                    restored=restored,
                )
            )
        if taken >= lookback:
            break
    return found


def _stage_checks(stage: Stage) -> dict[str, MetricCheck]:
    return {c.name: c for c in stage.checks}


def kpis(stage: Stage, names: list[str], status: ReleaseStatus, runs: list[MetricRun]) -> list[Kpi]:
    """Each KPI check's latest value against its threshold (pre-promotion run first, else guards)."""
    checks = _stage_checks(stage)
    stage_status = next((s for s in status.stages if s.name == stage.name), None)
    latest: dict[str, tuple[float | None, datetime | None]] = {}
    for run in runs:
        if run.input.stage != stage.name:
            continue
        for state in run.report.checks:
            valued = [m for m in state.measurements if m.value is not None]
            if valued:
                last = valued[-1]
                previous = latest.get(state.name)
                if previous is None or previous[1] is None or last.at >= previous[1]:
                    latest[state.name] = (last.value, last.at)
    if stage_status is not None and stage_status.checks is not None:
        for state in stage_status.checks.checks:  # the pre-promotion run decides, when there is one
            valued = [m for m in state.measurements if m.value is not None]
            if valued:
                latest[state.name] = (valued[-1].value, valued[-1].at)
    out = []
    for name in names:
        check = checks.get(name)
        value, at = latest.get(name, (None, None))
        if value is None or check is None:
            out.append(Kpi(check=name, target=_target(check), status="no-data"))
            continue
        out.append(
            Kpi(
                check=name,
                target=check.condition(),
                value=value,
                status="missed" if check.breached(value) else "met",
                measured_at=at,
            )
        )
    return out


def go_no_go(
    record: ReleaseRecord,
    status: ReleaseStatus,
    stage_name: str,
    events: list[AuditEvent],
    rollbacks: list[RollbackEntry],
    *,
    now: datetime | None = None,
) -> GoNoGoReport:
    """The committee's go/no-go for `stage_name`: score, blocking items, recommendation."""
    plan = record.plan
    spec = plan.reports.go_no_go
    stage = plan.stage(stage_name)
    if stage is None:
        raise ValueError(f"{stage_name!r} is not a stage of {record.release_id}")
    stage_status = next(s for s in status.stages if s.name == stage_name)
    deductions: list[Deduction] = []
    blocking: list[BlockingItem] = []
    issues: list[Issue] = []

    def add(rule: str, items: list[tuple[str, list[str]]]) -> None:
        deduction = _deduct(rule, items)
        if deduction is not None:
            deductions.append(deduction)

    def block(condition: str, items: list[tuple[str, list[str]]]) -> None:
        if items and condition in spec.blocking:
            blocking.append(
                BlockingItem(
                    condition=condition,
                    reason="; ".join(r for r, _ in items),
                    evidence=[e for _, ev in items for e in ev],
                )
            )

    # checklist items of the stage not green (the sign-off is what the committee is doing now)
    not_green = [
        i
        for i in stage_status.checklist
        if i.status in (ItemStatus.FAILED, ItemStatus.PENDING, ItemStatus.WARNING)
        and i.key.value != "signoff"
    ]
    items = [
        (f"{i.title}: {i.status.value}", [i.evidence] if i.evidence else []) for i in not_green
    ]
    add("checklist", items)
    failed_items = [
        (f"{i.title}: failed", [i.evidence] if i.evidence else [])
        for i in not_green
        if i.status == ItemStatus.FAILED
    ]
    block("checklist-failed", failed_items)
    for i in not_green:
        issues.append(
            Issue(
                severity="critical" if i.status == ItemStatus.FAILED else "warning",
                title=f"{stage_name}: {i.title} is {i.status.value}",
                evidence=i.evidence,
                at=i.at,
            )
        )

    # guard breaches during the ramp
    guards = series(record.runs, stage=stage_name, phase="guard")
    counted = failed_counts(record.runs, stage_name)
    breaches = []
    for line in guards:
        shown = [p for p in line.points if p.breached]
        times = max(len(shown), counted.get(line.check, 0))
        if not times:
            continue
        normal = line.normal()
        evidence = [
            f"{p.at.isoformat()} {line.check}={_fmt(p.value)} (normal {normal})" for p in shown
        ]
        breaches.append(
            (f"guard {line.check} breached {times} time(s) (normal {normal})", evidence)
        )
        issues.append(
            Issue(
                severity="warning",
                title=f"guard {line.check} breached {times} time(s) during the ramp in {stage_name}",
                evidence="; ".join(evidence[:5]),
                at=shown[0].at if shown else None,
            )
        )
    add("guard-breach", breaches)
    block("guard-breach", breaches)

    # alerts raised in the stage, and the ones still open
    stage_alerts = [a for a in status.alerts if a.stage == stage_name]
    raised = [
        (f"alert {a.check} raised", [f"{a.since.isoformat()}: {a.message}"]) for a in stage_alerts
    ]
    add("alert", raised)
    block("alert-raised", raised)
    open_alerts = [
        (
            f"alert {a.check} in {a.stage} still active",
            [f"since {a.since.isoformat()}: {a.message}"],
        )
        for a in status.alerts
        if a.active
    ]
    add("open-alert", open_alerts)
    block("open-alert", open_alerts)
    for a in status.alerts:
        if a.stage == stage_name or a.active:
            issues.append(
                Issue(
                    severity="critical" if a.active else "warning",
                    title=f"alert {a.check} in {a.stage}"
                    + (" (active)" if a.active else " (cleared)"),
                    evidence=a.message,
                    at=a.since,
                )
            )

    # contract failures in the stages so far
    contracts = []
    for s in status.stages:
        report = s.contract
        if report is not None and (report.failures_total or report.errors or not report.passed):
            contracts.append((f"contract tests in {s.name}: {report.summary()}", report.errors[:5]))
            issues.append(
                Issue(
                    severity="critical",
                    title=f"contract tests in {s.name}",
                    evidence=report.summary(),
                )
            )
        if s.name == stage_name:
            break
    add("contract", contracts)
    block("contract-failure", contracts)

    # inconclusive metric runs of this release
    inconclusive = [
        (
            f"{e.action} inconclusive in {e.entity.rsplit('/', 1)[-1]}",
            [f"{e.timestamp.isoformat()} {e.details.get('summary', '')}".strip()],
        )
        for e in events
        if e.action in ("checks.result", "guard.tripped")
        and e.result == ChecksOutcome.INCONCLUSIVE.value
    ]
    add("inconclusive", inconclusive)
    block("inconclusive-check", inconclusive)
    for reason, evidence in inconclusive:
        issues.append(Issue(severity="warning", title=reason, evidence="; ".join(evidence)))

    # rollbacks of this service in its last N releases
    history = [
        (f"{r.release_id} rolled back", [f"{r.at.isoformat()}: {r.reason}"]) for r in rollbacks
    ]
    add("rollback-history", history)
    block("recent-rollback", history)

    # pilot KPIs against their targets
    names = spec.kpis or [c.name for c in stage.pre_checks()]
    measured = kpis(stage, names, status, record.runs)
    missed: list[tuple[str, list[str]]] = [
        (f"KPI {k.check}={_fmt(k.value)} misses its target {k.target}", [])
        for k in measured
        if k.status == "missed"
    ]
    no_data: list[tuple[str, list[str]]] = [
        (f"KPI {k.check} has no measurement", []) for k in measured if k.status == "no-data"
    ]
    add("kpi-missed", missed)
    add("kpi-no-data", no_data)
    block("kpi-missed", missed)
    for reason, _ in missed + no_data:
        issues.append(Issue(severity="warning", title=reason))

    # refusals are not scored, but the committee sees them
    for e in events:
        if e.action.endswith(".refused"):
            issues.append(
                Issue(
                    severity="info",
                    title=f"{e.action} by {e.userId}",
                    evidence=str(e.details.get("reason", "")),
                    at=e.timestamp,
                )
            )

    score = max(0, 100 - sum(d.points for d in deductions))
    go = score >= spec.threshold and not blocking
    reasons = [f"readiness score {score}/100 against a threshold of {spec.threshold}"]
    if blocking:
        reasons.append("blocked: " + "; ".join(b.reason for b in blocking))
    elif score < spec.threshold:
        reasons.append(f"the score is below {spec.threshold}")
    rollback_records = list(rollbacks)
    if status.rollback is not None:
        rb = status.rollback
        rollback_records.insert(
            0,
            RollbackEntry(
                release_id=status.release_id,
                at=rb.started_at,
                reason=rb.reason,
                restored=[
                    f"{s.flag}@{s.environment}={s.percent}%"
                    for s in (rb.report.restored if rb.report else [])
                ],
            ),
        )
    gate = stage_status.signoff
    signoff = ""
    if gate is not None:
        signoff = (
            f"{len(gate.approvals)}/{gate.quorum} approval(s) from {', '.join(gate.members)}"
            + (f", deadline {gate.deadline_at.isoformat()}" if gate.deadline_at else "")
            + (f"; {gate.outcome}" if gate.outcome else "")
        )
    return GoNoGoReport(
        release_id=record.release_id,
        service=plan.service,
        version=plan.version,
        stage=stage_name,
        generated_at=now or _now(),
        score=score,
        threshold=spec.threshold,
        recommendation="go" if go else "no-go",
        reasons=reasons,
        deductions=deductions,
        blocking=blocking,
        kpis=measured,
        checklist=[
            ChecklistLine(stage=s.name, item=i.title, status=i.status.value, evidence=i.evidence)
            for s in status.stages
            if s.state != StageState.PENDING and s.state != StageState.SKIPPED
            for i in s.checklist
            if i.status != ItemStatus.NOT_APPLICABLE
        ],
        issues=issues,
        rollbacks=rollback_records,
        guards=guards,
        signoff=signoff,
    )


# -- pilot health --------------------------------------------------------------------------------

GOVERNANCE_ACTIONS = ("alert.raised", "signoff.escalated", "guard.tripped")


def channel_checks(plan: ReleasePlan, stage: Stage) -> list[str]:
    listed = plan.reports.pilot_health.channel_checks
    if listed:
        return list(listed)
    return [c.name for c in stage.checks if c.template == "im-channel-down"]


def pilot_health(
    record: ReleaseRecord,
    status: ReleaseStatus | None,
    stage_name: str,
    store: AuditStore,
    period_start: datetime,
    period_end: datetime,
    *,
    now: datetime | None = None,
) -> PilotHealthReport:
    """Channel connectivity, API error trends and governance alerts over one period."""
    plan = record.plan
    stage = plan.stage(stage_name)
    if stage is None:
        raise ValueError(f"{stage_name!r} is not a stage of {record.release_id}")
    lines = series(record.runs, stage=stage_name, phase=None, since=period_start, until=period_end)
    merged = _merge_phases(lines)
    channel_names = set(channel_checks(plan, stage))
    channels = []
    for line in merged:
        if line.check not in channel_names:
            continue
        valued = [p for p in line.points if p.value is not None]
        up = sum(1 for p in valued if not p.breached)
        channels.append(
            ChannelHealth(
                check=line.check,
                measurements=len(valued),
                up=up,
                availability=(up / len(valued)) if valued else None,
                last_value=valued[-1].value if valued else None,
            )
        )
    trend = []
    for line in merged:
        if line.check in channel_names:
            continue
        days: dict[str, list[tuple[float, bool]]] = {}
        for p in line.points:
            if p.value is not None:
                days.setdefault(p.at.astimezone(UTC).date().isoformat(), []).append(
                    (p.value, p.breached)
                )
        for day, values in sorted(days.items()):
            numbers = [v for v, _ in values]
            trend.append(
                DailyValue(
                    day=day,
                    check=line.check,
                    samples=len(values),
                    mean=sum(numbers) / len(numbers),
                    max=max(numbers),
                    breaches=sum(1 for _, b in values if b),
                )
            )
    counts = dict(store.counts("action", period_start, period_end, release_id=record.release_id))
    refusals = sum(n for action, n in counts.items() if action.endswith(".refused"))
    governance = store.events_of(
        period_start, period_end, actions=GOVERNANCE_ACTIONS, release_id=record.release_id
    ) + store.events_of(
        period_start, period_end, action_suffix=".refused", release_id=record.release_id
    )
    governance.sort(key=lambda e: e.timestamp)
    return PilotHealthReport(
        release_id=record.release_id,
        stage=stage_name,
        generated_at=now or _now(),
        period_start=period_start,
        period_end=period_end,
        state=status.state.value if status is not None else "",
        channels=channels,
        error_trend=trend,
        series=merged,
        alerts_raised=counts.get("alert.raised", 0),
        refusals=refusals,
        escalations=counts.get("signoff.escalated", 0),
        guard_trips=counts.get("guard.tripped", 0),
        governance_events=[_ref(e) for e in governance],
    )


def _merge_phases(lines: list[CheckSeries]) -> list[CheckSeries]:
    """Pre-promotion and guard measurements of one check, as one series."""
    merged: dict[tuple[str, str], CheckSeries] = {}
    for line in lines:
        key = (line.stage, line.check)
        if key not in merged:
            merged[key] = line.model_copy(update={"phase": "all", "points": list(line.points)})
        else:
            merged[key].points.extend(line.points)
    for line in merged.values():
        line.points.sort(key=lambda p: p.at)
    return list(merged.values())


def _ref(event: AuditEvent) -> AuditRef:
    message = str(event.details.get("reason") or event.details.get("summary") or "")
    return AuditRef(
        at=event.timestamp,
        action=event.action,
        result=event.result,
        user=event.userId,
        entity=event.entity,
        message=message,
    )


# -- release notes ------------------------------------------------------------------------------


def release_notes(
    plan: ReleasePlan,
    status: ReleaseStatus,
    current: Iterable[FlagState],
    *,
    read_problem: str = "",
    now: datetime | None = None,
) -> ReleaseNotes:
    """Flags before the release and now, channels, contacts, description, every gate."""
    now_states = {(s.environment, s.flag): s for s in current}
    snapshots = {s.environment: s for s in status.snapshots}
    environments = list(snapshots) or [s.env for s in plan.stages if s.flags]
    flags = []
    for env in dict.fromkeys(environments):
        for flag in plan.flags:
            snap = snapshots.get(env)
            before = snap.state(flag) if snap else None
            now_state = now_states.get((env, flag))
            flags.append(
                FlagLine(
                    flag=flag,
                    environment=env,
                    before=_percent(before),
                    now=_percent(now_state),
                    now_known=now_state is not None and not read_problem,
                )
            )
    contacts = [
        ContactLine(name=c.name, role=c.role, email=c.email, phone=c.phone, im=c.im)
        for c in plan.contacts
    ]
    emergency = [contacts[i] for i, c in enumerate(plan.contacts) if c.emergency]
    return ReleaseNotes(
        release_id=status.release_id,
        service=plan.service,
        version=plan.version,
        owner=plan.owner,
        generated_at=now or _now(),
        state=status.state.value,
        description=plan.description,
        flags=flags,
        im_channels=list(plan.im_channels),
        contacts=contacts,
        emergency_contacts=emergency,
        gates=gate_lines(status),
    )


def _percent(state: FlagState | None) -> int | None:
    if state is None or not state.exists:
        return None
    if state.percent is not None:
        return state.percent
    return 100 if state.enabled else 0


def gate_lines(status: ReleaseStatus) -> list[GateLine]:
    """One line per gate a stage met, with its result."""
    lines = []
    for s in status.stages:
        if s.state in (StageState.PENDING, StageState.SKIPPED):
            lines.append(GateLine(stage=s.name, gate="stage", result=s.state.value))
            continue
        if s.smoke is not None:
            lines.append(GateLine(stage=s.name, gate="smoke", result=s.smoke.summary()))
        if s.flag_steps:
            steps = ", ".join(f"{f.flag} {f.percent}% ({f.state})" for f in s.flag_steps)
            lines.append(GateLine(stage=s.name, gate="flags", result=steps))
        if s.guards:
            lines.append(GateLine(stage=s.name, gate="guards", result=s.guards[-1].summary()))
        if s.contract is not None:
            lines.append(GateLine(stage=s.name, gate="contract", result=s.contract.summary()))
        if s.checks is not None:
            lines.append(GateLine(stage=s.name, gate="checks", result=s.checks.summary()))
        if s.go_no_go is not None:
            lines.append(GateLine(stage=s.name, gate="go/no-go", result=s.go_no_go.headline))
        if s.signoff is not None:
            gate = s.signoff
            who = ", ".join(
                f"{d.user} {'approved' if d.approve else 'rejected'}" for d in gate.decisions
            )
            lines.append(
                GateLine(
                    stage=s.name,
                    gate="signoff",
                    result=f"{gate.outcome or 'waiting'}: {who or 'no decision yet'}",
                )
            )
        lines.append(
            GateLine(
                stage=s.name,
                gate="stage",
                result=s.state.value + (f" ({s.failure})" if s.failure else ""),
            )
        )
    return lines


# -- retrospective ------------------------------------------------------------------------------


def retrospective(
    plan: ReleasePlan,
    status: ReleaseStatus,
    run_id: str,
    events: list[AuditEvent],
    *,
    now: datetime | None = None,
) -> Retrospective:
    """Outcome, duration, changes, risks met, who approved, follow-ups."""
    result = status.result
    finished = result.finished_at if result else None
    changes = []
    for s in status.stages:
        for step in s.flag_steps:
            changes.append(f"{step.flag} → {step.percent}% in {step.environment} ({step.state})")
    if status.rollback is not None and status.rollback.report is not None:
        restored = ", ".join(
            f"{f.flag}@{f.environment}={f.percent}%" for f in status.rollback.report.restored
        )
        changes.append(f"rolled back ({status.rollback.state}): {restored}")
    risks = []
    for a in status.alerts:
        risks.append(
            f"alert {a.check} in {a.stage}: {a.message}" + (" (still active)" if a.active else "")
        )
    for s in status.stages:
        if s.state == StageState.FAILED:
            risks.append(f"stage {s.name} failed: {s.failure}")
    for e in events:
        if e.action.endswith(".refused"):
            risks.append(f"{e.action} by {e.userId}: {e.details.get('reason', '')}")
        elif e.action == "guard.tripped":
            risks.append(
                f"guard {e.details.get('check')} {e.result}: {e.details.get('summary', '')}"
            )
        elif e.action == "signoff.escalated":
            risks.append(f"sign-off of {e.entity.rsplit('/', 1)[-1]} escalated near its deadline")
    approvers = []
    for s in status.stages:
        if s.signoff is not None:
            approvers += [f"{d.user} ({s.name})" for d in s.signoff.approvals]
    follow_ups = []
    for s in status.stages:
        if s.state in (StageState.PENDING, StageState.SKIPPED):
            continue
        for i in s.checklist:
            # left open with evidence (e.g. inconclusive checks); items never reached are not
            if i.status == ItemStatus.PENDING and i.evidence:
                follow_ups.append(f"{s.name}: {i.title} left open: {i.evidence}")
    for a in status.alerts:
        if a.active:
            follow_ups.append(f"alert {a.check} in {a.stage} is still active")
    for e in events:
        if (
            e.action in ("checks.result", "guard.tripped")
            and e.result == ChecksOutcome.INCONCLUSIVE.value
        ):
            follow_ups.append(
                f"inconclusive {e.action} in {e.entity.rsplit('/', 1)[-1]}: find out why the evidence was missing"
            )
    if status.rollback is not None and status.rollback.state != "completed":
        follow_ups.append("the rollback did not complete: restore by hand (docs/runbook.md)")
    for s in status.stages:
        if s.go_no_go is not None and s.go_no_go.recommendation == "no-go":
            follow_ups.append(f"{s.name}: the go/no-go said No-go ({s.go_no_go.headline})")
    return Retrospective(
        release_id=status.release_id,
        run_id=run_id,
        service=plan.service,
        version=plan.version,
        generated_at=now or _now(),
        outcome=(result.outcome.value if result else status.state.value),
        reason=result.reason if result else "",
        started_at=status.started_at,
        finished_at=finished,
        duration_s=((finished or now or _now()) - status.started_at).total_seconds(),
        changes=changes,
        risks=risks,
        approvers=approvers,
        follow_ups=follow_ups,
    )


# -- governance review --------------------------------------------------------------------------


def month_bounds(month: str) -> tuple[datetime, datetime]:
    year, number = (int(p) for p in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def previous_month(at: datetime) -> str:
    first = at.astimezone(UTC).replace(day=1)
    last = first - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def governance_review(
    store: AuditStore,
    month: str,
    *,
    governance_version: str | None = None,
    signed_by: list[str] | None = None,
    gap_minutes: int = 5,
    now: datetime | None = None,
) -> GovernanceReview:
    """One month of the audit trail, aggregated in the audit store's SQL."""
    start, end = month_bounds(month)
    by_action = store.counts("action", start, end)
    contract = dict(store.counts("result", start, end, action="contract.result"))
    runs = sum(contract.values())
    passed = contract.get("passed", 0)
    changes = []
    for e in store.events_of(start, end, actions=PERMISSION_ACTIONS):
        changes.append(
            PermissionChange(
                at=e.timestamp,
                change_id=e.entity.removeprefix("access:"),
                status=e.action.removeprefix("access."),
                actor=e.userId,
                change=str(e.details.get("change", "")),
                message=str(e.details.get("message") or e.details.get("reason") or ""),
            )
        )
    return GovernanceReview(
        month=month,
        generated_at=now or _now(),
        period_start=start,
        period_end=end,
        events=sum(n for _, n in by_action),
        by_action=[Count(key=k, count=n) for k, n in by_action],
        by_result=[Count(key=k, count=n) for k, n in store.counts("result", start, end)],
        by_user=[Count(key=k, count=n) for k, n in store.counts("user_id", start, end)],
        gap_minutes=gap_minutes,
        gaps=[
            Gap(start=a, end=b, minutes=round((b - a).total_seconds() / 60, 1))
            for a, b in store.quiet_gaps(start, end, gap_minutes)
        ],
        permission_changes=changes,
        contract_runs=runs,
        contract_passed=passed,
        contract_pass_rate=(passed / runs) if runs else None,
        guard_rates=[
            GuardRate(check=c, releases=r, samples=n, breaches=b, mean=mean, max=peak)
            for c, r, n, b, mean, peak in store.guard_rates(start, end)
        ],
        errors_per_day=[DailyCount(day=d, count=n) for d, n in store.errors_per_day(start, end)],
        governance_version=governance_version,
        governance_signed_off=signed_by is not None,
        governance_signed_by=list(signed_by or []),
    )


def guard_observations(record: ReleaseRecord, finished_at: datetime) -> list[dict[str, object]]:
    """What the release's guards measured, per stage and check, for the governance review."""
    rows = []
    for line in series(record.runs, phase="guard"):
        values = [p.value for p in line.points if p.value is not None]
        rows.append(
            {
                "release_id": record.release_id,
                "run_id": record.run_id,
                "stage": line.stage,
                "check_name": line.check,
                "finished_at": finished_at,
                "samples": len(values),
                "breaches": line.breaches,
                "value_sum": float(sum(values)),
                "value_max": max(values) if values else None,
            }
        )
    return rows

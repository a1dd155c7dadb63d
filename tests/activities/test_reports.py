"""The reports' building blocks on real stores and files: the governance review's SQL over a
seeded audit store (SQLite and PostgreSQL) with known counts, the readiness score's rubric, the
three formats carrying the same facts, and the release log's one entry per release."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from activities.reports.build import RUBRIC, go_no_go, governance_review
from activities.reports.render import render
from activities.reports.sources import MetricRun, ReleaseRecord
from activities.reports.store import append_entry, entries
from tests.harness.postgres import PostgresCluster, missing_reason
from warden.models.audit import AuditEvent
from warden.models.metrics import (
    CheckPhase,
    ChecksInput,
    ChecksOutcome,
    ChecksReport,
    CheckState,
    Measurement,
    MeasurementPhase,
)
from warden.models.plan import parse_plan
from warden.models.release import (
    CHECKLIST_TITLES,
    Alert,
    ChecklistItem,
    ChecklistKey,
    ItemStatus,
    ReleaseInput,
    ReleaseState,
    ReleaseStatus,
    StageState,
    StageStatus,
)
from warden.models.reports import ReportKind, report_json_schema
from warden.stores.audit import AuditStore

NOV = datetime(2026, 11, 1, tzinfo=UTC)

# -- a seeded audit store ------------------------------------------------------------------------

#: (minutes after 1 November 00:00, action, result, user): November's known events.
SEED: list[tuple[float, str, str, str]] = [
    (2, "release.started", "started", "alice"),
    (3, "stage.promoted", "promoted", "warden"),
    (6, "contract.result", "passed", "warden"),
    (20, "contract.result", "failed", "warden"),  # 14 minutes after the one before: a gap
    (21, "access.requested", "waiting", "bob"),
    (22, "access.approval", "accepted", "carol"),
    (23, "access.applied", "applied", "bob"),
    (24, "api.denied", "forbidden", "mallory"),
    (25, "api.denied", "forbidden", "mallory"),
    (29, "contract.result", "passed", "warden"),
    (29.5, "access.requested", "waiting", "dave"),
    (34.5, "access.rejected", "rejected", "dave"),  # exactly 5 minutes: a gap too
    (36, "release.started", "started", "alice"),
    (24 * 60, "contract.result", "passed", "warden"),  # the next day, after a long gap
    (24 * 60 + 1, "signoff.approval", "accepted", "carol"),
]
#: Outside November: must not count.
OUTSIDE = [
    (datetime(2026, 10, 31, 23, 59, tzinfo=UTC), "release.started"),
    (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), "release.started"),
]


def _event(at: datetime, action: str, result: str, user: str, **fields: Any) -> AuditEvent:
    return AuditEvent(
        eventId=str(uuid.uuid4()),
        userId=user,
        action=action,
        entity=fields.pop(
            "entity", f"access:change-{user}" if action.startswith("access.") else "x"
        ),
        result=result,
        timestamp=at,
        details=fields,
    )


def seed(store: AuditStore) -> None:
    events = [
        _event(NOV + timedelta(minutes=m), action, result, user, change=f"grant operator to {user}")
        for m, action, result, user in SEED
    ]
    events += [_event(at, action, "started", "alice") for at, action in OUTSIDE]
    store.write(events)
    store.write_guard_observations(
        [
            _observation("release-desk-1", "error-rate", 10, 0, 0.1, 0.02),
            _observation("release-desk-2", "error-rate", 5, 2, 1.0, 0.5),
            _observation("release-desk-2", "channel-up", 4, 1, 3.0, 1.0),
        ]
    )


def _observation(
    release: str, check: str, samples: int, breaches: int, total: float, peak: float
) -> dict[str, object]:
    return {
        "release_id": release,
        "run_id": "run-1",
        "stage": "pilot",
        "check_name": check,
        "finished_at": NOV + timedelta(days=3),
        "samples": samples,
        "breaches": breaches,
        "value_sum": total,
        "value_max": peak,
    }


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    audit = AuditStore(url)
    seed(audit)
    yield audit
    audit.close()


def test_the_governance_review_counts_what_the_store_holds(store: AuditStore) -> None:
    review = governance_review(store, "2026-11", governance_version="7", signed_by=["carol"])
    assert review.events == len(SEED)
    assert {c.key: c.count for c in review.by_action} == {
        "release.started": 2,
        "stage.promoted": 1,
        "contract.result": 4,
        "access.requested": 2,
        "access.approval": 1,
        "access.applied": 1,
        "access.rejected": 1,
        "api.denied": 2,
        "signoff.approval": 1,
    }
    assert review.by_action[0].key == "contract.result"  # most first
    assert {c.key: c.count for c in review.by_user} == {
        "alice": 2,
        "warden": 5,
        "bob": 2,
        "carol": 2,
        "mallory": 2,
        "dave": 2,
    }
    results = {c.key: c.count for c in review.by_result}
    assert results["passed"] == 3 and results["failed"] == 1 and results["forbidden"] == 2
    # gaps of 5 minutes or more: 6→20, 29.5→34.5 (exactly 5), 36→the next day, the day after→the end
    assert [(g.start, g.end) for g in review.gaps] == [
        (NOV + timedelta(minutes=6), NOV + timedelta(minutes=20)),
        (NOV + timedelta(minutes=29.5), NOV + timedelta(minutes=34.5)),
        (NOV + timedelta(minutes=36), NOV + timedelta(minutes=24 * 60)),
        (NOV + timedelta(minutes=24 * 60 + 1), datetime(2026, 12, 1, tzinfo=UTC)),
    ]
    assert review.gaps[0].minutes == 14
    assert [(p.status, p.actor) for p in review.permission_changes] == [
        ("requested", "bob"),
        ("applied", "bob"),
        ("requested", "dave"),
        ("rejected", "dave"),
    ]
    assert review.permission_changes[0].change == "grant operator to bob"
    assert (review.contract_runs, review.contract_passed) == (4, 3)
    assert review.contract_pass_rate == pytest.approx(0.75)
    rates = {g.check: g for g in review.guard_rates}
    assert (rates["error-rate"].releases, rates["error-rate"].samples) == (2, 15)
    assert rates["error-rate"].breaches == 2
    assert rates["error-rate"].mean == pytest.approx(1.1 / 15)
    assert rates["error-rate"].max == pytest.approx(0.5)
    assert [(d.day, d.count) for d in review.errors_per_day] == [("2026-11-01", 4)]
    assert review.governance_signed_off and review.governance_signed_by == ["carol"]


def test_a_month_without_events_is_one_gap(store: AuditStore) -> None:
    review = governance_review(store, "2026-09")
    assert review.events == 0 and review.by_action == []
    assert [(g.start, g.end) for g in review.gaps] == [
        (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
    ]
    assert review.contract_pass_rate is None and not review.governance_signed_off


def test_guard_observations_are_kept_once(tmp_path: Path) -> None:
    audit = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    row = _observation("release-desk-9", "error-rate", 3, 0, 0.03, 0.01)
    assert audit.write_guard_observations([row]) == 1
    assert audit.write_guard_observations([row]) == 0  # a retried retrospective adds nothing
    audit.close()


# -- the readiness score ---------------------------------------------------------------------


def _plan(**reports: Any) -> Any:
    guard = {
        "name": "error-rate",
        "query": {"provider": "http-json", "url": "/m", "json_path": "e"},
        "max": 0.05,
        "interval": "1s",
    }
    return parse_plan(
        {
            "service": "desk",
            "version": "1.0",
            "owner": "alice",
            "flags": ["ai.solutions"],
            "reports": {"go_no_go": reports} if reports else {},
            "stages": [
                {
                    "name": "pilot",
                    "base_url": "http://127.0.0.1:9",
                    "flags": [{"flag": "ai.solutions", "steps": [50, 100]}],
                    "checks": [guard],
                    "signoff": {"approvers": ["carol"], "quorum": 1},
                }
            ],
        }
    )


def _status(plan: Any, alerts: list[Alert] | None = None) -> ReleaseStatus:
    checklist = [
        ChecklistItem(key=k, title=CHECKLIST_TITLES[k], status=ItemStatus.PASSED, evidence="ok")
        for k in ChecklistKey
        if k != ChecklistKey.SIGNOFF
    ] + [ChecklistItem(key=ChecklistKey.SIGNOFF, title=CHECKLIST_TITLES[ChecklistKey.SIGNOFF])]
    t = NOV
    pre = ChecksReport(
        phase="pre",
        outcome=ChecksOutcome.PASSED,
        checks=[
            CheckState(
                name="error-rate",
                phase=CheckPhase.SUCCESSFUL,
                measurements=[Measurement(at=t, phase=MeasurementPhase.SUCCESSFUL, value=0.01)],
            )
        ],
    )
    return ReleaseStatus(
        release_id=plan.release_id,
        service="desk",
        version="1.0",
        owner="alice",
        started_by="alice",
        trace_id="t",
        started_at=t,
        state=ReleaseState.RUNNING,
        current_stage="pilot",
        stages=[
            StageStatus(
                name="pilot",
                environment="pilot",
                base_url="http://127.0.0.1:9",
                state=StageState.RUNNING,
                started_at=t,
                checklist=checklist,
                checks=pre,
            )
        ],
        alerts=alerts or [],
    )


def _guard_run(plan: Any, values: list[float]) -> MetricRun:
    stage = plan.stages[0]
    measurements = [
        Measurement(
            at=NOV + timedelta(seconds=i),
            phase=MeasurementPhase.FAILED if v > 0.05 else MeasurementPhase.SUCCESSFUL,
            value=v,
        )
        for i, v in enumerate(values)
    ]
    return MetricRun(
        ChecksInput(
            release_id=plan.release_id,
            stage="pilot",
            base_url=stage.base_url,
            phase="guard",
            checks=stage.checks,
            trace_id="t",
        ),
        ChecksReport(
            phase="guard",
            outcome=ChecksOutcome.PASSED,
            checks=[CheckState(name="error-rate", measurements=measurements)],
        ),
    )


def _record(plan: Any, runs: list[MetricRun]) -> ReleaseRecord:
    return ReleaseRecord(
        plan.release_id, "run-1", ReleaseInput(plan=plan, started_by="alice", trace_id="t"), runs
    )


def test_a_clean_pilot_scores_100_and_says_go() -> None:
    plan = _plan()
    report = go_no_go(
        _record(plan, [_guard_run(plan, [0.01, 0.02])]), _status(plan), "pilot", [], []
    )
    assert (report.score, report.recommendation) == (100, "go")
    assert report.deductions == [] and report.blocking == []
    assert [(k.check, k.status) for k in report.kpis] == [("error-rate", "met")]
    assert len(report.guards[0].points) == 2


def test_a_breach_that_recovered_costs_points_and_is_listed() -> None:
    plan = _plan()
    alert = Alert(check="error-rate", stage="pilot", since=NOV, message="breached", active=False)
    record = _record(plan, [_guard_run(plan, [0.01, 0.4, 0.02])])
    report = go_no_go(record, _status(plan, [alert]), "pilot", [], [])
    rules = {d.rule: d for d in report.deductions}
    assert report.score == 100 - rules["guard-breach"].points - rules["alert"].points == 80
    assert "error-rate=0.4" in rules["guard-breach"].evidence[0]
    assert report.recommendation == "go"  # 80 meets the default threshold of 80
    assert any("breached 1 time" in i.title for i in report.issues)


def test_a_blocking_item_forces_no_go_whatever_the_score() -> None:
    plan = _plan(blocking=["guard-breach"], threshold=10)
    report = go_no_go(_record(plan, [_guard_run(plan, [0.4])]), _status(plan), "pilot", [], [])
    assert report.score >= 10
    assert report.recommendation == "no-go"
    assert [b.condition for b in report.blocking] == ["guard-breach"]
    assert any("blocked" in r for r in report.reasons)


def test_open_alerts_block_by_default_and_rollbacks_of_the_service_count() -> None:
    from warden.models.reports import RollbackEntry

    plan = _plan()
    alert = Alert(check="error-rate", stage="pilot", since=NOV, message="down")
    past = [RollbackEntry(release_id="release-desk-0.9", at=NOV, reason="guard tripped")]
    report = go_no_go(_record(plan, []), _status(plan, [alert]), "pilot", [], past)
    assert report.recommendation == "no-go"
    assert {b.condition for b in report.blocking} == {"open-alert"}
    assert {d.rule for d in report.deductions} == {"alert", "open-alert", "rollback-history"}
    assert report.rollbacks[0].release_id == "release-desk-0.9"


def test_every_rubric_rule_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "reports.md").read_text()
    for rule in RUBRIC:
        assert f"| `{rule.name}` | {rule.points} | {rule.cap} |" in docs, rule.name


# -- the three formats ---------------------------------------------------------------------------


def test_markdown_html_and_json_carry_the_same_facts() -> None:
    plan = _plan(blocking=["guard-breach"])
    alert = Alert(check="error-rate", stage="pilot", since=NOV, message="breached", active=False)
    report = go_no_go(
        _record(plan, [_guard_run(plan, [0.01, 0.4])]), _status(plan, [alert]), "pilot", [], []
    )
    md, page, data = (
        render(report, "md"),
        render(report, "html"),
        json.loads(render(report, "json")),
    )
    jsonschema_rs.validator_for(report_json_schema(ReportKind.GO_NO_GO)).validate(data)
    assert data["score"] == report.score and data["recommendation"] == "no-go"
    for fact in [
        f"{report.score}/100",
        "NO-GO",
        *(d.rule for d in report.deductions),
        "error-rate",
    ]:
        assert fact in md and fact in page, fact
    assert "<svg" in page and "matplotlib" in page  # the chart is drawn by the plotting library
    assert "<svg" not in md


def test_every_report_kind_has_a_schema() -> None:
    for kind in ReportKind:
        schema = report_json_schema(kind)
        assert schema["properties"]["kind"]["const"] == kind.value


# -- the release log -----------------------------------------------------------------------------


def test_the_release_log_gets_one_entry_per_release_run(tmp_path: Path) -> None:
    log = tmp_path / "release_log.md"
    assert append_entry(log, "release-a-1", "run-1", "## release-a-1: promoted\n")
    assert not append_entry(log, "release-a-1", "run-1", "## release-a-1: promoted\n")
    assert append_entry(log, "release-a-1", "run-2", "## release-a-1 again: rolled_back\n")
    assert entries(log) == [("release-a-1", "run-1"), ("release-a-1", "run-2")]
    assert log.read_text().startswith("# Release log")


def test_concurrent_appends_keep_every_entry_once(tmp_path: Path) -> None:
    log = tmp_path / "release_log.md"

    def write(n: int) -> None:
        for _ in range(3):  # each "retried" three times
            append_entry(log, f"release-b-{n}", "run", f"## release-b-{n}\n")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(entries(log)) == sorted((f"release-b-{n}", "run") for n in range(8))


def test_the_retrospective_lists_risks_approvers_and_follow_ups() -> None:
    from activities.reports.build import retrospective
    from warden.models.release import ReleaseResult
    from warden.models.signoff import Decision, SignoffState

    plan = _plan()
    alert = Alert(check="error-rate", stage="pilot", since=NOV, message="breached")
    status = _status(plan, [alert])
    pilot = status.stages[0]
    pilot.item(ChecklistKey.THRESHOLDS).status = ItemStatus.PENDING
    pilot.item(ChecklistKey.THRESHOLDS).evidence = "inconclusive: error-rate=n/a"
    pilot.signoff = SignoffState(
        members=["carol"], decisions=[Decision(user="carol", approve=True, at=NOV)]
    )
    status.state = ReleaseState.ABORTED
    status.result = ReleaseResult(
        release_id=plan.release_id,
        outcome=ReleaseState.ABORTED,
        reason="aborted by bob: customer escalation",
        finished_at=NOV + timedelta(minutes=90),
    )
    refusal = _event(NOV, "approve.refused", "refused", "alice", reason="separation of duties")
    retro = retrospective(plan, status, "run-7", [refusal])
    assert (retro.outcome, retro.duration_s) == ("aborted", 5400)
    assert retro.approvers == ["carol (pilot)"]
    assert any("alert error-rate in pilot" in r for r in retro.risks)
    assert any("approve.refused by alice: separation of duties" in r for r in retro.risks)
    assert "pilot: Every monitored threshold is normal left open: inconclusive: error-rate=n/a" in (
        retro.follow_ups
    )
    assert "alert error-rate in pilot is still active" in retro.follow_ups
    text = render(retro, "md")
    assert text.startswith(f"# {plan.release_id}") and "## Follow-ups" in text

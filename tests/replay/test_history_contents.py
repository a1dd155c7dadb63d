"""The committed histories show what their scenarios claim, so replaying them proves something.

A history that never reaches a gate replays green whatever that gate's code does; these
tests pin down which commands, signals and updates each recorded release really contains.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payloads
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from warden.models.flags import FlagChangeInput
from warden.models.metrics import ChecksInput
from warden.models.release import RefusalRecord, ReleaseResult, ReleaseState
from warden.models.signoff import MembersInput

HISTORIES = Path(__file__).parent / "histories"


@dataclass
class Recorded:
    """What one history holds: scheduled activities (with inputs), signals, updates, result."""

    activities: list[tuple[str, Payloads]] = field(default_factory=list)
    signals: list[tuple[str, Payloads]] = field(default_factory=list)
    updates: list[str] = field(default_factory=list)
    result: Payloads | None = None

    def names(self) -> list[str]:
        return [name for name, _ in self.activities]

    def release_result(self) -> ReleaseResult:
        assert self.result is not None, "the workflow did not complete"
        result: ReleaseResult = _decode(self.result, ReleaseResult)
        return result

    def inputs(self, activity: str, type_: type[Any]) -> list[Any]:
        return [_decode(p, type_) for name, p in self.activities if name == activity]


def _decode(payloads: Payloads, type_: type[Any]) -> Any:
    [value] = pydantic_data_converter.payload_converter.from_payloads(
        list(payloads.payloads), [type_]
    )
    return value


def recorded(name: str) -> Recorded:
    path = HISTORIES / f"{name}.json"
    history = WorkflowHistory.from_json(name, path.read_text())
    found = Recorded()
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            found.activities.append((attrs.activity_type.name, attrs.input))
        elif event.HasField("workflow_execution_signaled_event_attributes"):
            signal = event.workflow_execution_signaled_event_attributes
            found.signals.append((signal.signal_name, signal.input))
        elif event.HasField("workflow_execution_update_accepted_event_attributes"):
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            found.updates.append(request.input.name)
        elif event.HasField("workflow_execution_completed_event_attributes"):
            found.result = event.workflow_execution_completed_event_attributes.result
    return found


@dataclass(frozen=True)
class Claim:
    outcome: ReleaseState
    reason: str
    activities: frozenset[str]
    updates: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    failed_stage: str | None = None


CLAIMS = {
    "release_live_flag_kept": Claim(
        ReleaseState.PROMOTED,
        "promoted",
        frozenset({"apply_flag_change"}),
        updates=("approve", "approve"),
    ),
    "release_contract_failed": Claim(
        ReleaseState.ROLLED_BACK,
        "contract tests failed in dev",
        frozenset({"run_contract_tests", "apply_flag_change", "restore_flags"}),
        failed_stage="dev",
    ),
    "release_checks_passed": Claim(
        ReleaseState.PROMOTED, "promoted", frozenset({"run_checks", "apply_flag_change"})
    ),
    "release_guard_tripped": Claim(
        ReleaseState.ROLLED_BACK,
        "guard external-api-error-rate tripped during ai.solutions at 25%",
        frozenset({"run_checks", "apply_flag_change", "restore_flags"}),
        failed_stage="pilot",
    ),
    "release_committee_signoff": Claim(
        ReleaseState.PROMOTED,
        "promoted",
        frozenset({"resolve_members"}),
        updates=("approve", "approve", "approve"),
        signals=("record_refusal",),
    ),
    "release_decision_changed": Claim(
        ReleaseState.PROMOTED,
        "promoted",
        frozenset({"apply_flag_change"}),
        updates=("approve", "approve", "approve"),
        signals=("record_refusal",),
    ),
    "release_signoff_expired": Claim(
        ReleaseState.ROLLED_BACK,
        "sign-off deadline passed at pilot with 1 of 2",
        frozenset({"apply_flag_change", "restore_flags", "send_notice"}),
        updates=("approve",),
        failed_stage="pilot",
    ),
    "release_paused_resumed": Claim(
        ReleaseState.PROMOTED,
        "promoted",
        frozenset({"apply_flag_change"}),
        updates=("pause", "resume", "approve", "approve"),
    ),
    "release_verified_decisions": Claim(
        ReleaseState.PROMOTED,
        "promoted",
        frozenset({"apply_flag_change"}),
        updates=("approve", "pause", "resume", "approve", "approve"),
    ),
    "release_checks_inconclusive": Claim(
        ReleaseState.PROMOTED,
        "promoted",
        frozenset({"run_checks", "send_notice"}),
        updates=("resume",),
    ),
    "release_go_no_go": Claim(
        ReleaseState.PROMOTED,
        "promoted",
        frozenset(
            {
                "build_go_no_go",
                "ensure_pilot_schedule",
                "delete_pilot_schedule",
                "build_release_notes",
                "write_retrospective",
            }
        ),
        updates=("approve", "approve"),
    ),
    "release_go_no_go_rejected": Claim(
        ReleaseState.ROLLED_BACK,
        "rejected at pilot by erin",
        frozenset({"build_go_no_go", "restore_flags", "write_retrospective"}),
        updates=("reject",),
        failed_stage="pilot",
    ),
}


def test_the_gate_activities_are_all_covered() -> None:
    scheduled = {
        name
        for path in HISTORIES.glob("*.json")
        if path.name != "workflow_ids.json"
        for name in recorded(path.stem).names()
    }
    assert {"run_checks", "run_contract_tests", "resolve_members"} <= scheduled


@pytest.mark.parametrize("name", CLAIMS)
def test_history_holds_what_its_scenario_claims(name: str) -> None:
    claim, found = CLAIMS[name], recorded(name)
    result = found.release_result()
    assert result.outcome == claim.outcome
    assert claim.reason in result.reason
    assert result.failed_stage == claim.failed_stage
    assert claim.activities <= set(found.names())
    assert tuple(found.updates) == claim.updates
    assert tuple(name for name, _ in found.signals) == claim.signals


def test_checks_run_before_promotion_and_as_guards() -> None:
    pre = recorded("release_checks_passed").inputs("run_checks", ChecksInput)
    assert [c.phase for c in pre] == ["pre"]
    assert {c.name for c in pre[0].checks} == {"external-api-error-rate", "im-channel-up"}
    guard = recorded("release_guard_tripped").inputs("run_checks", ChecksInput)
    assert [c.phase for c in guard] == ["guard", "guard"]  # the 5% bake held, the 25% one tripped


def test_a_live_flag_is_opened_from_where_it_is_never_lowered() -> None:
    found = recorded("release_live_flag_kept")
    writes = found.inputs("apply_flag_change", FlagChangeInput)
    # dev 0 -> 100; pilot served 30%: 5 and 25 skipped, only 50 written
    assert [(w.change.environment, w.change.percent) for w in writes] == [
        ("dev", 100),
        ("pilot", 50),
    ]
    assert "ramp-keeps-live-flags" in patches("release_live_flag_kept")
    assert "ramp-keeps-live-flags" not in patches("release_promoted")  # replays without it


def patches(name: str) -> set[str]:
    """The patch ids a history's workflow recorded (`workflow.patched`)."""
    history = WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())
    found = set()
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_patch":
                [payload] = marker.details["patch-data"].payloads
                found.add(json.loads(payload.data)["id"])
    return found


def test_the_rollback_follows_the_failing_gate() -> None:
    for name, gate in (
        ("release_contract_failed", "run_contract_tests"),
        ("release_guard_tripped", "run_checks"),
    ):
        names = recorded(name).names()
        last_gate = len(names) - 1 - names[::-1].index(gate)
        assert "restore_flags" in names[last_gate:], name


def test_the_committee_refusal_is_a_non_member_approval() -> None:
    found = recorded("release_committee_signoff")
    [members] = found.inputs("resolve_members", MembersInput)
    assert members.committee == "release-board"
    [(_, payloads)] = found.signals
    refusal = _decode(payloads, RefusalRecord)
    assert (refusal.request, refusal.user, refusal.stage) == ("approve", "grace", "pilot")
    assert "not a member" in refusal.reason


def test_the_expired_signoff_escalates_before_the_deadline() -> None:
    keys = [
        _decode(p, dict)["key"]
        for n, p in recorded("release_signoff_expired").activities
        if n == "send_notice"
    ]
    # A notice's key is <release id>:<run id>:<what it is about>.
    assert [k.split(":", 2)[2] for k in keys] == [
        "signoff:pilot",
        "signoff-escalation:pilot",
        "rollback-completed",
        "finished",
    ]


def test_an_inconclusive_check_pauses_announces_and_runs_again() -> None:
    found = recorded("release_checks_inconclusive")
    assert [c.phase for c in found.inputs("run_checks", ChecksInput)] == ["pre", "pre"]
    keys = [_decode(p, dict)["key"] for n, p in found.activities if n == "send_notice"]
    assert [k.split(":", 2)[2] for k in keys] == ["auto-pause:1"]


def test_decisions_with_proofs_and_a_refusal_the_release_audited_itself() -> None:
    """The refused raw approval is an accepted update that failed (and was audited by the
    release); the ones with proofs carry them, signed, in the history."""
    history = WorkflowHistory.from_json(
        "release_verified_decisions",
        (HISTORIES / "release_verified_decisions.json").read_text(),
    )
    failed = [
        e.workflow_execution_update_completed_event_attributes.outcome.failure
        for e in history.events
        if e.HasField("workflow_execution_update_completed_event_attributes")
        and e.workflow_execution_update_completed_event_attributes.outcome.HasField("failure")
    ]
    assert [f.application_failure_info.type for f in failed] == ["ProofRequired"]
    info = failed[0].application_failure_info
    assert info.non_retryable
    assert _decode(info.details, str) == "audited"  # written to the trail by the release itself
    access = recorded("access_change_verified")
    assert access.updates == ["approve", "approve", "approve"]


def test_a_changed_decision_is_refused_and_audited_a_repeated_one_answered() -> None:
    found = recorded("release_decision_changed")
    [(_, payloads)] = found.signals
    refusal = _decode(payloads, RefusalRecord)
    assert (refusal.request, refusal.user, refusal.stage) == ("reject", "carol", "pilot")
    assert "already approved" in refusal.reason


def test_an_access_change_answers_repeats_audits_refusals_and_memos_its_outcome() -> None:
    path = HISTORIES / "access_change_decisions.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    found = recorded("access_change_decisions")
    assert found.updates == ["approve", "approve", "approve"]  # carol twice, then erin
    [(name, payloads)] = found.signals
    refusal = _decode(payloads, RefusalRecord)
    assert (name, refusal.request, refusal.user) == ("record_refusal", "reject", "carol")
    assert "already approved" in refusal.reason
    patches = [
        e.marker_recorded_event_attributes.details["patch-data"]
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and "patch-data" in e.marker_recorded_event_attributes.details
    ]
    [patch] = [_decode(p, dict) for p in patches]
    assert patch["id"] == "access-outcome-memo"
    [memo] = [
        e.workflow_properties_modified_event_attributes.upserted_memo.fields
        for e in history.events
        if e.HasField("workflow_properties_modified_event_attributes")
    ]
    outcome = pydantic_data_converter.payload_converter.from_payloads([memo["outcome"]], [str])
    assert outcome == ["applied"]


def _events(name: str) -> list[Any]:
    return list(WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text()).events)


def test_the_go_no_go_is_built_before_anyone_decides() -> None:
    events = _events("release_go_no_go")
    built = next(
        i
        for i, e in enumerate(events)
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "build_go_no_go"
    )
    first_update = next(
        i
        for i, e in enumerate(events)
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    )
    assert built < first_update
    notices = [
        _decode(p, dict) for n, p in recorded("release_go_no_go").activities if n == "send_notice"
    ]
    signoff = next(n for n in notices if n["key"].endswith(":signoff:pilot"))
    assert "Go/no-go: Go: readiness 100/100" in signoff["text"]
    assert signoff["link"].endswith("/reports/go-no-go?stage=pilot")


def test_the_release_notes_only_follow_a_promotion() -> None:
    assert "build_release_notes" not in recorded("release_go_no_go_rejected").names()
    names = recorded("release_go_no_go_rejected").names()
    assert names.index("restore_flags") < names.index("write_retrospective")


def test_the_scheduled_reports_build_store_and_send() -> None:
    assert recorded("pilot_health").names() == [
        "release_running",
        "build_pilot_health",
        "send_notice",
    ]
    assert recorded("governance_review").names() == ["build_governance_review", "send_notice"]

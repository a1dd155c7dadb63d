"""The release pipeline on the time-skipping test server: outcomes a release manager relies on."""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import AsyncExitStack

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.helpers import RecordingServer
from tests.workflows.conftest import Releases, waiting_at
from warden.models.audit import AuditQuery
from warden.models.release import (
    AbortRequest,
    ChecklistKey,
    ControlRequest,
    DecisionRequest,
    ItemStatus,
    ReleaseState,
    StageState,
)
from warden.runtime.worker import build_worker
from warden.settings import Settings
from warden.stores.audit import AuditStore
from workflows.release import ReleaseWorkflow

STAGES = ["dev", "staging", "pilot", "production"]


def _ramp_plan(releases: Releases, **extra: object) -> object:
    plan = releases.plan(flags=["ai.solutions"], **extra)
    data = plan.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    data["stages"][2]["flags"] = [{"flag": "ai.solutions", "steps": [5, 25, 50], "bake": "10m"}]
    from warden.models.plan import parse_plan

    return parse_plan(data)


async def _approve(handle: object, stage: str, *users: str) -> None:
    for user in users:
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage=stage, user=user)
        )  # type: ignore[attr-defined]


async def test_promoted_release_walks_every_stage_and_audits_it(releases: Releases) -> None:
    plan = releases.plan()
    handle = await releases.start(plan)
    await releases.wait_for(handle, waiting_at("pilot"))
    await _approve(handle, "pilot", "carol", "dave")
    result = await handle.result()

    assert result.outcome == ReleaseState.PROMOTED
    assert result.exit_code == 0
    assert result.promoted_stages == STAGES
    status = await handle.query(ReleaseWorkflow.status)
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert pilot.item(ChecklistKey.SIGNOFF).status == ItemStatus.PASSED
    assert "carol" in pilot.item(ChecklistKey.SIGNOFF).evidence
    assert all(s.state == StageState.PROMOTED for s in status.stages)
    assert all(s.smoke and s.smoke.passed for s in status.stages)
    # The timeline tells it in order: the deciding approval, then the sign-off it completed.
    timeline = [(e.action, e.user) for e in status.timeline]
    assert timeline.index(("signoff.approval", "dave")) < timeline.index(("signoff.approved", None))
    assert timeline.index(("signoff.approved", None)) < timeline.index(("release.finished", None))

    rows = AuditStore(releases.settings.audit_url).query(AuditQuery(releaseId=plan.release_id))
    actions = [r.action for r in rows]
    finished = actions.index("release.finished")
    assert actions[0] == "release.started"
    # after the end, only the reports about it: release notes and the retrospective
    assert set(actions[finished + 1 :]) == {"report.release_notes", "release.retrospective"}
    assert actions.count("stage.promoted") == 4
    assert {r.userId for r in rows if r.action == "signoff.approval"} == {"carol", "dave"}
    assert len({r.eventId for r in rows}) == len(rows)
    assert all(r.traceId == status.trace_id for r in rows)


async def test_smoke_failure_fails_the_stage_without_going_further(releases: Releases) -> None:
    plan = releases.plan()
    data = plan.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["stages"][1]["smoke"] = [{"name": "ready", "path": "/ready", "expect_status": 204}]
    from warden.models.plan import parse_plan

    handle = await releases.start(parse_plan(data))
    result = await handle.result()
    assert result.outcome == ReleaseState.FAILED
    assert result.failed_stage == "staging"
    assert "HTTP 200, expected 204" in result.reason
    assert result.promoted_stages == ["dev"]
    status = await handle.query(ReleaseWorkflow.status)
    assert [s.state for s in status.stages] == [
        StageState.PROMOTED,
        StageState.FAILED,
        StageState.SKIPPED,
        StageState.SKIPPED,
    ]


async def test_an_answered_update_is_already_in_the_audit_trail(releases: Releases) -> None:
    """Audit events are written in batches, but an approval or a pause is on record by the
    time the member's command reports it."""
    handle = await releases.start(releases.plan())
    store = AuditStore(releases.settings.audit_url)

    def rows(action: str) -> list[str]:
        found = store.query(AuditQuery(releaseId=handle.id, action=action))
        return [r.userId for r in found]

    try:
        await releases.wait_for(handle, waiting_at("pilot"))
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol", comment="ok")
        )
        assert rows("signoff.approval") == ["carol"]
        await handle.execute_update(
            ReleaseWorkflow.pause, ControlRequest(user="bob", reason="change freeze")
        )
        assert rows("release.paused") == ["bob"]
        # Everything before the sign-off is on record, in the order it happened.
        actions = [r.action for r in store.query(AuditQuery(releaseId=handle.id))]
        assert actions[0] == "release.started"
        assert actions.index("stage.promoted") < actions.index("signoff.requested")
        assert actions[-2:] == ["signoff.approval", "release.paused"]
    finally:
        # A release left running would hold the time-skipping server's clock for the next test.
        await handle.terminate("test done")


async def test_quorum_needs_distinct_members_and_refuses_outsiders(releases: Releases) -> None:
    handle = await releases.start(releases.plan())
    await releases.wait_for(handle, waiting_at("pilot"))

    first = await handle.execute_update(
        ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol")
    )
    again = await handle.execute_update(
        ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol")
    )
    assert first.counted and not again.counted
    assert again.approvals == 1 and again.decided is None
    # a different decision from a member who decided already is refused, and changes nothing
    with pytest.raises(WorkflowUpdateFailedError) as turned:
        await handle.execute_update(
            ReleaseWorkflow.reject, DecisionRequest(stage="pilot", user="carol", comment="no")
        )
    assert isinstance(turned.value.cause, ApplicationError)
    assert turned.value.cause.type == "AlreadyDecided"
    status = await handle.query(ReleaseWorkflow.status)
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert pilot.signoff is not None and [d.approve for d in pilot.signoff.decisions] == [True]

    refusals = {
        "alice": "SelfApproval",  # started the release
        "mallory": "NotAMember",
    }
    for user, kind in refusals.items():
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(
                ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user=user)
            )
        assert isinstance(info.value.cause, ApplicationError)
        assert info.value.cause.type == kind
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="production", user="carol")
        )
    assert info.value.cause.type == "NotAwaitingApproval"  # type: ignore[union-attr]
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="qa", user="carol")
        )
    assert info.value.cause.type == "UnknownStage"  # type: ignore[union-attr]

    status = await handle.query(ReleaseWorkflow.status)
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert pilot.signoff is not None and [d.user for d in pilot.signoff.decisions] == ["carol"]
    assert status.state == ReleaseState.WAITING_APPROVAL

    await _approve(handle, "pilot", "erin")
    assert (await handle.result()).outcome == ReleaseState.PROMOTED


async def test_rejection_ends_the_release_rejected(releases: Releases) -> None:
    handle = await releases.start(releases.plan())
    await releases.wait_for(handle, waiting_at("pilot"))
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(
            ReleaseWorkflow.reject, DecisionRequest(stage="pilot", user="dave")
        )
    assert info.value.cause.type == "CommentRequired"  # type: ignore[union-attr]
    await handle.execute_update(
        ReleaseWorkflow.reject,
        DecisionRequest(stage="pilot", user="dave", comment="SLA dashboard is red"),
    )
    result = await handle.result()
    assert result.outcome == ReleaseState.REJECTED
    assert result.exit_code == 1
    assert "dave" in result.reason and "SLA dashboard is red" in result.reason
    assert result.promoted_stages == ["dev", "staging"]


async def test_deadline_passes_without_quorum_and_the_stage_is_rejected(releases: Releases) -> None:
    handle = await releases.start(releases.plan())
    await releases.wait_for(handle, waiting_at("pilot"))
    await _approve(handle, "pilot", "carol")
    result = await handle.result()  # the test server skips the 2h deadline
    assert result.outcome == ReleaseState.REJECTED
    assert "deadline" in result.reason and "1 of 2" in result.reason
    status = await handle.query(ReleaseWorkflow.status)
    assert any(e.action == "signoff.escalated" for e in status.timeline)
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # the release has ended
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="dave")
        )


async def test_pause_holds_the_release_until_resumed(releases: Releases) -> None:
    handle = await releases.start(releases.plan())
    await releases.wait_for(handle, waiting_at("pilot"))
    paused = await handle.execute_update(
        ReleaseWorkflow.pause, ControlRequest(user="bob", reason="freeze")
    )
    assert "paused" in paused.message
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(ReleaseWorkflow.pause, ControlRequest(user="bob"))
    await _approve(handle, "pilot", "carol", "dave")
    status = await releases.wait_for(handle, lambda s: s.state == ReleaseState.PAUSED)
    assert status.current_step.startswith("paused before")
    assert next(s for s in status.stages if s.name == "production").state == StageState.PENDING
    await handle.execute_update(ReleaseWorkflow.resume, ControlRequest(user="bob"))
    assert (await handle.result()).outcome == ReleaseState.PROMOTED


async def test_abort_while_waiting_restores_flags_and_ends_aborted(releases: Releases) -> None:
    before = releases.init_flags(["dev", "pilot"], {"ai.solutions": 0, "chat.channel.feishu": 100})
    plan = _ramp_plan(releases)
    handle = await releases.start(plan)  # type: ignore[arg-type]
    status = await releases.wait_for(handle, waiting_at("pilot"))
    assert [s.percent for s in next(s for s in status.stages if s.name == "pilot").flag_steps] == [
        5,
        25,
        50,
    ]
    assert json.loads(releases.flag_path("pilot").read_text())["flags"]["ai.solutions"][
        "targeting"
    ]["fractional"][0] == ["on", 50]
    # each flag step is audited once, with what the flag served before it
    steps = [
        (e.entity, e.details["before"], e.details["percent"])
        for e in AuditStore(releases.settings.audit_url).query(
            AuditQuery(releaseId=plan.release_id, action="flag.changed")  # type: ignore[attr-defined]
        )
    ]
    assert sorted(steps, key=lambda s: (s[0], s[2])) == [
        ("flag:ai.solutions@dev", 0, 100),
        ("flag:ai.solutions@pilot", 0, 5),
        ("flag:ai.solutions@pilot", 5, 25),
        ("flag:ai.solutions@pilot", 25, 50),
    ]

    await handle.execute_update(
        ReleaseWorkflow.abort, AbortRequest(user="bob", reason="customer escalation")
    )
    result = await handle.result()
    assert result.outcome == ReleaseState.ABORTED
    assert "customer escalation" in result.reason
    assert (
        result.rollback is not None
        and result.rollback.report is not None
        and result.rollback.report.verified
    )
    for env, content in before.items():
        assert releases.flag_path(env).read_bytes() == content


async def test_rejection_after_flag_changes_rolls_back_exactly(releases: Releases) -> None:
    before = releases.init_flags(
        ["dev", "pilot"], {"ai.solutions": 0, "customer.profile.refresh": 30}
    )
    handle = await releases.start(_ramp_plan(releases))  # type: ignore[arg-type]
    await releases.wait_for(handle, waiting_at("pilot"))
    await handle.execute_update(
        ReleaseWorkflow.reject,
        DecisionRequest(stage="pilot", user="erin", comment="error budget spent"),
    )
    result = await handle.result()
    assert result.outcome == ReleaseState.ROLLED_BACK
    assert result.rollback and result.rollback.trigger == "rejection"
    restored = {(f.flag, f.environment): f.percent for f in result.rollback.report.restored}  # type: ignore[union-attr]
    assert restored == {("ai.solutions", "dev"): 0, ("ai.solutions", "pilot"): 0}
    for env, content in before.items():
        assert releases.flag_path(env).read_bytes() == content


async def test_missing_flag_stops_the_release_before_anything_changes(releases: Releases) -> None:
    before = releases.init_flags(["dev", "pilot"], {"chat.channel.feishu": 100})
    handle = await releases.start(_ramp_plan(releases))  # type: ignore[arg-type]
    result = await handle.result()
    assert result.outcome == ReleaseState.FAILED
    assert "ai.solutions (dev)" in result.reason and "ai.solutions (pilot)" in result.reason
    assert result.rollback is None
    for env, content in before.items():
        assert releases.flag_path(env).read_bytes() == content


async def test_cancelling_the_workflow_still_restores_flags(releases: Releases) -> None:
    before = releases.init_flags(["dev", "pilot"], {"ai.solutions": 0})
    handle = await releases.start(_ramp_plan(releases))  # type: ignore[arg-type]
    await releases.wait_for(
        handle,
        lambda s: any(
            st.percent == 25 for st in next(x for x in s.stages if x.name == "pilot").flag_steps
        ),
    )
    await handle.cancel()
    from temporalio.client import WorkflowFailureError

    with pytest.raises(WorkflowFailureError):
        await handle.result()
    for env, content in before.items():
        assert releases.flag_path(env).read_bytes() == content
    rows = AuditStore(releases.settings.audit_url).query(
        AuditQuery(releaseId=handle.id, action="rollback.completed")
    )
    assert len(rows) == 1


async def test_ended_release_refuses_requests(releases: Releases) -> None:
    plan = releases.plan()
    data = plan.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["stages"][2].pop("signoff")
    from warden.models.plan import parse_plan

    handle = await releases.start(parse_plan(data))
    assert (await handle.result()).outcome == ReleaseState.PROMOTED
    for update, request in (
        (ReleaseWorkflow.pause, ControlRequest(user="bob")),
        (ReleaseWorkflow.abort, AbortRequest(user="bob", reason="late")),
    ):
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update(update, request)  # type: ignore[arg-type]


async def test_signoff_notices_give_the_deadline_with_its_zone(
    time_env: WorkflowEnvironment,
    client: Client,
    settings: Settings,
    task_queue: str,
    target: RecordingServer,
) -> None:
    """A committee member reads 'by 2026-11-02 09:00:00 UTC', not a bare or ISO-offset time."""
    with RecordingServer() as webhook:
        noticed = settings.model_copy(update={"webhook_urls": [webhook.url]})
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(
                build_worker(client, noticed, task_queue=task_queue, stack=stack)
            )
            releases = Releases(time_env, noticed, task_queue, target.url)
            handle = await releases.start(releases.plan())
            try:
                await releases.wait_for(handle, waiting_at("pilot"))
                for _ in range(100):
                    if webhook.requests:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await handle.terminate("test done")
    notice = webhook.json_bodies()[0]
    assert notice["title"].startswith("Sign-off needed")
    assert re.search(r"by \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.", notice["text"]), notice["text"]

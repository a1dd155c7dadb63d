"""A release never lowers a flag that is already live: the steps it already serves are skipped,
recorded with their reason, and a plan that means to start lower says `start_over: true`."""

from __future__ import annotations

import json
from typing import Any

from tests.workflows.conftest import Releases, waiting_at
from warden.flagstore.flagd_file import percent_of
from warden.models.audit import AuditQuery
from warden.models.plan import ReleasePlan, parse_plan
from warden.models.release import DecisionRequest, ReleaseState
from warden.stores.audit import AuditStore
from workflows.release import ReleaseWorkflow


def _plan(releases: Releases, **pilot_ramp: Any) -> ReleasePlan:
    plan = releases.plan(flags=["ai.solutions"])
    data = plan.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    data["stages"][2]["flags"] = [
        {"flag": "ai.solutions", "steps": [5, 25, 50, 100], "bake": "1m", **pilot_ramp}
    ]
    return parse_plan(data)


def _served(releases: Releases, env: str) -> int:
    definition = json.loads(releases.flag_path(env).read_text())["flags"]["ai.solutions"]
    return percent_of("ai.solutions", definition)[1]


async def _approve(handle: Any, *users: str) -> None:
    for user in users:
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user=user)
        )


async def test_steps_a_live_flag_already_serves_are_skipped_and_recorded(
    releases: Releases,
) -> None:
    releases.init_flags(["dev"], {"ai.solutions": 0})
    before = releases.init_flags(["pilot"], {"ai.solutions": 100})
    plan = _plan(releases)
    handle = await releases.start(plan)
    status = await releases.wait_for(handle, waiting_at("pilot"))

    # 95% of pilot's users never lost the feature: the file was not written at all.
    assert releases.flag_path("pilot").read_bytes() == before["pilot"]
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert [(s.percent, s.state) for s in pilot.flag_steps] == [
        (5, "skipped"),
        (25, "skipped"),
        (50, "skipped"),
        (100, "skipped"),
    ]
    assert all("already serves 100% in pilot" in s.reason for s in pilot.flag_steps)
    skipped = [e for e in status.timeline if e.action == "flag.step.skipped"]
    assert len(skipped) == 4 and "step 5% skipped" in skipped[0].message
    assert "start_over: true" in skipped[0].message
    # A ramp whose every step is skipped still bakes once (1m), so its guards watch the stage.
    after = status.timeline[status.timeline.index(skipped[-1]) + 1]
    assert (after.at - skipped[-1].at).total_seconds() >= 60, after

    await _approve(handle, "carol", "dave")
    result = await handle.result()
    assert result.outcome == ReleaseState.PROMOTED
    assert _served(releases, "pilot") == 100 and _served(releases, "dev") == 100

    rows = AuditStore(releases.settings.audit_url).query(AuditQuery(releaseId=plan.release_id))
    skips = [r for r in rows if r.action == "flag.step.skipped"]
    assert [r.details["percent"] for r in skips] == [5, 25, 50, 100]
    assert {(r.result, r.details["served"], r.entity) for r in skips} == {
        ("skipped", 100, "flag:ai.solutions@pilot")
    }
    changed = [r for r in rows if r.action == "flag.changed"]
    assert [(r.entity, r.details["percent"]) for r in changed] == [("flag:ai.solutions@dev", 100)]


async def test_a_flag_partly_live_opens_from_where_it_is(releases: Releases) -> None:
    releases.init_flags(["dev"], {"ai.solutions": 0})
    releases.init_flags(["pilot"], {"ai.solutions": 30})
    handle = await releases.start(_plan(releases))
    status = await releases.wait_for(handle, waiting_at("pilot"))
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert [(s.percent, s.state) for s in pilot.flag_steps] == [
        (5, "skipped"),
        (25, "skipped"),
        (50, "done"),
        (100, "done"),
    ]
    rows = AuditStore(releases.settings.audit_url).query(
        AuditQuery(releaseId=status.release_id, action="flag.changed")
    )
    pilot_rows = [r.details for r in rows if r.entity == "flag:ai.solutions@pilot"]
    # the first write's "before" is what the flag served, not a skipped step
    assert [(d["before"], d["percent"]) for d in pilot_rows] == [(30, 50), (50, 100)]
    await handle.terminate("test over")


async def test_start_over_lowers_first_and_the_rollback_restores_the_live_value(
    releases: Releases,
) -> None:
    before = releases.init_flags(["dev", "pilot"], {"ai.solutions": 100})
    handle = await releases.start(_plan(releases, start_over=True))
    status = await releases.wait_for(handle, waiting_at("pilot"))
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert [s.state for s in pilot.flag_steps] == ["done"] * 4
    await handle.execute_update(
        ReleaseWorkflow.reject, DecisionRequest(stage="pilot", user="erin", comment="no")
    )
    result = await handle.result()
    assert result.outcome == ReleaseState.ROLLED_BACK
    for env, content in before.items():  # the snapshot from before the release, byte for byte
        assert releases.flag_path(env).read_bytes() == content

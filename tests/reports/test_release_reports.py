"""The committee's reports from real releases: the session's dev server, a worker on the test's
task queue, and the sample Support Desk with simulated traffic serving the stages.

A canary whose IM channel goes down and comes back during the ramp scores lower, with the breach
and the alert listed, and its blocking item forces No-go; a clean canary scores 100 and says Go,
with its pilot health schedule there while the pilot runs, triggered by `temporal schedule
trigger`, and gone when the release ends; a plan whose contract gate fails in staging never
reaches pilot, so no go/no-go is ever built.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.reports.store import entries
from tests.reports.conftest import (
    WARDEN,
    Desk,
    cli_env,
    release_plan,
    run_tool,
    start,
    wait_status,
)
from warden.models.release import ReleaseState, ReleaseStatus
from warden.models.reports import GoNoGoReport
from warden.runtime.devserver import find_binary
from warden.settings import Settings
from workflows.release import ReleaseWorkflow

SMOKE = [{"name": "health", "path": "/healthz"}]


def _pilot(desk: Desk, bake: str) -> dict[str, Any]:
    return {
        "name": "pilot",
        "base_url": desk.url,
        "smoke": SMOKE,
        "flags": [{"flag": "ai.solutions", "steps": [50, 100], "bake": bake}],
        "checks": [
            # alerts at once when a channel is down; notify-only, so the ramp goes on
            {"name": "channel-down", "template": "im-channel-down", "for": "0s", "interval": "1s"},
            {
                "name": "errors",
                "template": "external-api-error-rate",
                "interval": "5s",
                "phases": ["pre"],
            },
        ],
        "signoff": {"approvers": ["carol", "dave"], "quorum": 1, "deadline": "1h"},
    }


def _waiting(status: ReleaseStatus) -> bool:
    return status.state == ReleaseState.WAITING_APPROVAL


def _pilot_status(status: ReleaseStatus) -> Any:
    return next(s for s in status.stages if s.name == "pilot")


def _stored(settings: Settings, release_id: str, name: str) -> Path:
    return settings.artifacts_path / "reports" / release_id / name


async def test_a_breach_that_recovers_lowers_the_score_and_a_blocking_item_says_no_go(
    worker: Client, settings: Settings, desks: Callable[..., Desk]
) -> None:
    desk = desks("pilot")
    plan = release_plan(
        flags=["ai.solutions"],
        reports={"go_no_go": {"threshold": 50, "blocking": ["guard-breach", "open-alert"]}},
        stages=[_pilot(desk, "25s")],
    )
    handle = await start(worker, settings, plan)
    await wait_status(
        handle, lambda s: any(f.state == "baking" for f in _pilot_status(s).flag_steps)
    )
    desk.channel("feishu", "down")
    await wait_status(handle, lambda s: any(a.check == "channel-down" for a in s.alerts), 30)
    desk.channel("feishu", "up")
    await wait_status(handle, lambda s: not any(a.active for a in s.alerts), 30)
    status = await wait_status(handle, _waiting)

    summary = _pilot_status(status).go_no_go
    assert summary is not None and summary.recommendation == "no-go"
    assert summary.score is not None and 50 <= summary.score < 100
    report = GoNoGoReport.model_validate_json(
        _stored(settings, plan.release_id, "go-no-go-pilot.json").read_text()
    )
    assert report.score == summary.score
    rules = {d.rule: d for d in report.deductions}
    assert set(rules) == {"guard-breach", "alert"}
    assert any("channel-down" in e for e in rules["guard-breach"].evidence)
    assert [b.condition for b in report.blocking] == ["guard-breach"]  # the alert has cleared
    assert any(i.title.startswith("guard channel-down breached") for i in report.issues)
    assert "<svg" in _stored(settings, plan.release_id, "go-no-go-pilot.html").read_text()

    # the committee reads it in `warden release status` and with `warden report go-no-go`
    env = cli_env(settings, worker)
    code, out, err = await run_tool(WARDEN, "release", "status", plan.release_id, env=env)
    assert code == 0, err
    assert f"go/no-go: No-go: readiness {report.score}/100" in out
    code, out, err = await run_tool(
        WARDEN, "report", "go-no-go", plan.release_id, "--format", "json", env=env
    )
    assert code == 0, err
    assert json.loads(out)["score"] == report.score

    await handle.execute_update(
        ReleaseWorkflow.reject,
        _decision("carol", "the go/no-go says no"),
    )
    result = await handle.result()
    assert result.outcome == ReleaseState.ROLLED_BACK
    address = worker.service_client.config.target_host
    assert f"pilot-health-{plan.release_id}" not in await _schedules(env, address)
    assert entries(settings.release_log_path) == [(plan.release_id, result_run(handle))]
    log = settings.release_log_path.read_text()
    assert "alert channel-down in pilot" in log and "rolled_back" in log


def result_run(handle: Any) -> str:
    return str(handle.result_run_id or handle.first_execution_run_id)


def _decision(user: str, comment: str = "") -> Any:
    from warden.models.release import DecisionRequest

    return DecisionRequest(stage="pilot", user=user, comment=comment)


async def _schedules(env: dict[str, str], address: str) -> str:
    code, out, err = await run_tool(
        str(find_binary("temporal")), "schedule", "list", "--address", address, env=env
    )
    assert code == 0, err
    return out


async def test_a_clean_canary_scores_100_says_go_and_its_pilot_health_schedule_lives_with_it(
    worker: Client, settings: Settings, desks: Callable[..., Desk]
) -> None:
    desk = desks("pilot")
    plan = release_plan(
        flags=["ai.solutions"],
        description="AI-suggested solutions for the pilot customers",
        im_channels=["feishu", "enterprise-qq"],
        contacts=[
            {"name": "Alice Chen", "role": "release manager", "email": "alice@example.com"},
            {
                "name": "Ops on-call",
                "role": "operations",
                "phone": "+86 10 5555",
                "emergency": True,
            },
        ],
        stages=[_pilot(desk, "3s")],
    )
    handle = await start(worker, settings, plan)
    status = await wait_status(handle, _waiting)
    summary = _pilot_status(status).go_no_go
    assert summary is not None
    assert (summary.score, summary.recommendation) == (100, "go"), summary.headline
    report = GoNoGoReport.model_validate_json(
        _stored(settings, plan.release_id, "go-no-go-pilot.json").read_text()
    )
    assert report.deductions == [] and report.blocking == []
    assert {k.check: k.status for k in report.kpis} == {"channel-down": "met", "errors": "met"}

    # the pilot health schedule exists while pilot runs, named after the release
    address = worker.service_client.config.target_host
    env = cli_env(settings, worker)
    schedule_id = f"pilot-health-{plan.release_id}"
    assert schedule_id in await _schedules(env, address)
    code, _, err = await run_tool(
        str(find_binary("temporal")),
        "schedule",
        "trigger",
        "--schedule-id",
        schedule_id,
        "--address",
        address,
        env=env,
    )
    assert code == 0, err
    reports = _stored(settings, plan.release_id, "")
    for _ in range(300):
        if list(reports.glob("pilot-health-*.md")):
            break
        await asyncio.sleep(0.2)
    [health] = list(reports.glob("pilot-health-*.md"))
    text = health.read_text()
    assert "Channel connectivity" in text and "channel-down" in text
    assert "Governance alerts" in text

    await handle.execute_update(ReleaseWorkflow.approve, _decision("dave", "ok"))
    result = await handle.result()
    assert result.outcome == ReleaseState.PROMOTED
    assert schedule_id not in await _schedules(env, address)

    final = await handle.query(ReleaseWorkflow.status)
    assert [r.kind.value for r in final.reports] == ["release-notes", "retrospective"]
    notes = _stored(settings, plan.release_id, "release-notes.md").read_text()
    assert "| ai.solutions | pilot | 0% | 100% |" in notes
    assert "Ops on-call" in notes.split("## Emergency contacts")[1]
    assert "feishu" in notes and "AI-suggested solutions" in notes
    assert entries(settings.release_log_path) == [(plan.release_id, result_run(handle))]


async def test_a_contract_failure_in_staging_never_reaches_pilot(
    worker: Client, settings: Settings, desks: Callable[..., Desk]
) -> None:
    staging = desks("staging", build="bad")
    pilot = desks("pilot")
    contract = {"max_examples": 5, "seed": 11, "include": ["suggestSolutions"], "time_budget": "3m"}
    plan = release_plan(
        flags=["ai.solutions"],
        stages=[
            {
                "name": "staging",
                "base_url": staging.url,
                "smoke": SMOKE,
                "flags": [{"flag": "ai.solutions"}],
                "contract": contract,
            },
            _pilot(pilot, "3s"),
        ],
    )
    handle = await start(worker, settings, plan)
    result = await handle.result()
    assert result.outcome == ReleaseState.ROLLED_BACK and "contract" in result.reason
    assert result.failed_stage == "staging"
    status = await handle.query(ReleaseWorkflow.status)
    assert _pilot_status(status).state.value == "skipped"
    assert _pilot_status(status).go_no_go is None
    assert not list(_stored(settings, plan.release_id, "").glob("go-no-go-*"))
    # the retrospective is written all the same, once
    assert entries(settings.release_log_path) == [(plan.release_id, result_run(handle))]
    assert "contract tests failed in staging" in settings.release_log_path.read_text()


async def test_a_cancelled_release_removes_its_schedule_and_writes_its_retrospective(
    worker: Client, settings: Settings, desks: Callable[..., Desk]
) -> None:
    desk = desks("pilot")
    plan = release_plan(flags=["ai.solutions"], stages=[_pilot(desk, "60s")])
    handle = await start(worker, settings, plan)
    address = worker.service_client.config.target_host
    env = cli_env(settings, worker)
    schedule_id = f"pilot-health-{plan.release_id}"
    await wait_status(
        handle, lambda s: any(f.state == "baking" for f in _pilot_status(s).flag_steps)
    )
    assert schedule_id in await _schedules(env, address)
    await handle.cancel()
    for _ in range(300):
        described = await handle.describe()
        if described.status is not None and described.status.name != "RUNNING":
            break
        await asyncio.sleep(0.2)
    assert schedule_id not in await _schedules(env, address)
    assert entries(settings.release_log_path) == [(plan.release_id, result_run(handle))]
    assert "workflow cancelled" in settings.release_log_path.read_text()


async def test_the_monthly_governance_review_is_scheduled_and_built_on_demand(
    worker: Client, settings: Settings
) -> None:
    env = cli_env(settings, worker)
    address = worker.service_client.config.target_host
    temporal = str(find_binary("temporal"))
    try:
        code, out, err = await run_tool(WARDEN, "governance", "review", "--schedule", env=env)
        assert code == 0, err
        assert out.strip() == "schedule governance-review-monthly created (0 6 1 * *)"
        code, out, err = await run_tool(
            WARDEN, "governance", "review", "--schedule", "--cron", "0 7 1 * *", env=env
        )
        assert (code, out.strip()) == (0, "schedule governance-review-monthly updated (0 7 1 * *)")
        assert "governance-review-monthly" in await _schedules(env, address)
        code, _, err = await run_tool(
            temporal,
            "schedule",
            "trigger",
            "--schedule-id",
            "governance-review-monthly",
            "--address",
            address,
            env=env,
        )
        assert code == 0, err
        reviews = settings.artifacts_path / "reports" / "governance"
        for _ in range(300):
            if list(reviews.glob("review-*.md")):
                break
            await asyncio.sleep(0.2)
        [stored] = list(reviews.glob("review-*.md"))
        assert "## Audit log summary" in stored.read_text()
    finally:
        await run_tool(
            temporal,
            "schedule",
            "delete",
            "--schedule-id",
            "governance-review-monthly",
            "--address",
            address,
            env=env,
        )
    code, out, err = await run_tool(
        WARDEN, "report", "governance-review", "--month", "2026-11", "--format", "json", env=env
    )
    assert code == 0, err
    assert json.loads(out)["month"] == "2026-11"
    code, out, err = await run_tool(
        WARDEN, "report", "governance-review", "--month", "2026-13", env=env
    )
    assert code == 2 and err.startswith("warden: error:") and out == ""


async def test_a_terminated_release_s_schedule_removes_itself_on_its_next_run(
    worker: Client, settings: Settings, desks: Callable[..., Desk]
) -> None:
    desk = desks("pilot")
    plan = release_plan(flags=["ai.solutions"], stages=[_pilot(desk, "60s")])
    handle = await start(worker, settings, plan)
    address = worker.service_client.config.target_host
    env = cli_env(settings, worker)
    schedule_id = f"pilot-health-{plan.release_id}"
    await wait_status(
        handle, lambda s: any(f.state == "baking" for f in _pilot_status(s).flag_steps)
    )
    await handle.terminate("operator pulled the plug")  # no code of the release runs after this
    assert schedule_id in await _schedules(env, address)
    code, _, err = await run_tool(
        str(find_binary("temporal")),
        "schedule",
        "trigger",
        "--schedule-id",
        schedule_id,
        "--address",
        address,
        env=env,
    )
    assert code == 0, err
    for _ in range(300):
        if schedule_id not in await _schedules(env, address):
            break
        await asyncio.sleep(0.3)
    assert schedule_id not in await _schedules(env, address)
    assert not list(_stored(settings, plan.release_id, "").glob("pilot-health-*"))

"""Releases whose histories are committed under histories/ and replayed on every test run.

Record them again (only when a workflow change is meant to be incompatible, and then with
`workflow.patched` for anything already running) with: `python -m tests.replay.record`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from examples.support_desk.flags import AI_SOLUTIONS, default_flags
from examples.support_desk.launcher import SupportDeskProcess
from tests.helpers import plan_dict
from warden.flagstore.flagd_file import flag_file, init_flag_file
from warden.models.flags import FlagOperation
from warden.models.governance import AccessChangeRequest, AccessDecision
from warden.models.plan import parse_plan
from warden.models.release import (
    AbortRequest,
    ControlRequest,
    DecisionRequest,
    ReleaseInput,
    ReleaseState,
)
from warden.models.reports import GovernanceReviewInput, PilotHealthInput
from warden.runtime.client import TemporalLink
from warden.services.access import AccessService
from warden.services.releases import ReleaseService, RequestRefused
from warden.services.trust import issuer
from warden.settings import Settings
from workflows.access import AccessChangeWorkflow
from workflows.flags import FlagChangeWorkflow
from workflows.release import ReleaseWorkflow
from workflows.reports import GovernanceReviewWorkflow, PilotHealthWorkflow

Run = Callable[[WorkflowEnvironment, Settings, str, str], Awaitable[WorkflowHandle[Any, Any]]]

#: Metric values good and bad for the scripted error-rate check (its threshold is 0.05).
OK, BAD = 0.01, 0.5


@dataclass(frozen=True)
class Scenario:
    """One recorded release: its driver, and what the worker recording it needs.

    `governed`: the worker reads `tests.workflows.test_governance.GOVERNANCE` as its governance
    file. `metrics`: `run_checks` answers each check from this script (a list per check name,
    the last answer repeating) on a virtual clock, so a ten-minute guard takes milliseconds;
    the history keeps only the reports, so it replays without them.
    """

    run: Run
    governed: bool = False
    metrics: Mapping[str, Sequence[float | None]] | None = None


async def _until(
    handle: WorkflowHandle[Any, Any], env: WorkflowEnvironment, check: Callable[[Any], bool]
) -> None:
    for _ in range(2000):
        status = await handle.query(ReleaseWorkflow.status)
        if check(status):
            return
        if status.state.ended:
            raise AssertionError(f"scenario ended early: {status.result}")
        if env.supports_time_skipping:
            await env.sleep(15)
        else:
            await asyncio.sleep(0.05)
    raise AssertionError("scenario did not reach the expected state")


def _waiting(stage: str) -> Callable[[Any], bool]:
    return lambda s: s.current_stage == stage and s.state == ReleaseState.WAITING_APPROVAL


async def _approved(handle: WorkflowHandle[Any, Any]) -> WorkflowHandle[Any, Any]:
    """carol and dave approve pilot; the release is promoted."""
    for user in ("carol", "dave"):
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user=user, comment="ok")
        )
    result = await handle.result()
    assert result.outcome == ReleaseState.PROMOTED, result
    return handle


def _ramp_data(base_url: str, version: str) -> dict[str, Any]:
    data = plan_dict(base_url, version=version, flags=["ai.solutions"])
    data["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    data["stages"][2]["flags"] = [{"flag": "ai.solutions", "steps": [5, 25, 50], "bake": "10m"}]
    return data


def _ramp_plan(base_url: str, version: str) -> Any:
    return parse_plan(_ramp_data(base_url, version))


async def _start(env: WorkflowEnvironment, plan: Any, task_queue: str) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(plan=plan, started_by="alice", trace_id="trace-replay"),
        id=plan.release_id,
        task_queue=task_queue,
    )


async def promoted(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    for name in ("dev", "pilot"):
        init_flag_file(flag_file(settings.flags_path, name), {"ai.solutions": 0})
    handle = await _start(env, _ramp_plan(base_url, "1.0.0"), task_queue)
    await _until(handle, env, _waiting("pilot"))
    for user in ("carol", "dave"):
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user=user, comment="ok")
        )
    await handle.result()
    return handle


async def rolled_back(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    for name in ("dev", "pilot"):
        init_flag_file(flag_file(settings.flags_path, name), {"ai.solutions": 0})
    handle = await _start(env, _ramp_plan(base_url, "1.1.0"), task_queue)
    await _until(handle, env, _waiting("pilot"))
    await handle.execute_update(
        ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol")
    )
    await handle.execute_update(
        ReleaseWorkflow.reject,
        DecisionRequest(stage="pilot", user="erin", comment="error budget spent"),
    )
    await handle.result()
    return handle


async def aborted(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    for name in ("dev", "pilot"):
        init_flag_file(flag_file(settings.flags_path, name), {"ai.solutions": 0})
    handle = await _start(env, _ramp_plan(base_url, "1.2.0"), task_queue)
    await _until(handle, env, lambda s: any(x.flag_steps for x in s.stages if x.name == "pilot"))
    await handle.execute_update(
        ReleaseWorkflow.abort, AbortRequest(user="bob", reason="customer escalation")
    )
    await handle.result()
    return handle


async def _grant_to_grace(
    env: WorkflowEnvironment, task_queue: str, change_id: str
) -> WorkflowHandle[Any, Any]:
    """alice asks for grace to become an operator; returned once the change takes decisions."""
    handle = await env.client.start_workflow(
        AccessChangeWorkflow.run,
        AccessChangeRequest(
            kind="grant", user="grace", role="operator", reason="on-call", requested_by="alice"
        ),
        id=change_id,
        task_queue=task_queue,
    )
    for _ in range(200):
        if (await handle.query(AccessChangeWorkflow.status)).members:
            break
        await asyncio.sleep(0.05)
    return handle


async def access_change(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    handle = await _grant_to_grace(env, task_queue, "access-grant-grace-replay")
    for user in ("carol", "erin"):
        await handle.execute_update(AccessChangeWorkflow.approve, AccessDecision(user=user))
    await handle.result()
    return handle


async def access_change_decisions(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """carol approves twice (counted once), then tries to reject (refused, audited through the
    record_refusal signal); erin's approval applies it and the outcome goes into the memo."""
    handle = await _grant_to_grace(env, task_queue, "access-grant-grace-decisions-replay")
    service = AccessService(TemporalLink(settings, env.client))
    for _ in range(2):
        await service.decide(handle.id, AccessDecision(user="carol"), approve=True)
    try:
        await service.decide(
            handle.id, AccessDecision(user="carol", comment="second thoughts"), approve=False
        )
    except RequestRefused as refused:
        assert refused.code == "AlreadyDecided", refused
    else:
        raise AssertionError("carol turned her approval into a rejection")
    await service.decide(handle.id, AccessDecision(user="erin"), approve=True)
    status = await handle.result()
    assert status.state == "applied", status
    return handle


async def kill_switch(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    init_flag_file(flag_file(settings.flags_path, "production"), {"chat.channel.feishu": 100})
    handle = await env.client.start_workflow(
        FlagChangeWorkflow.run,
        FlagOperation(
            flag="chat.channel.feishu",
            environment="production",
            percent=0,
            user="bob",
            reason="gateway flapping",
        ),
        id="flags-production-feishu-replay",
        task_queue=task_queue,
    )
    await handle.result()
    return handle


async def live_flag_kept(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """Pilot already serves ai.solutions at 30%: steps 5 and 25 are skipped, 50 is applied."""
    init_flag_file(flag_file(settings.flags_path, "dev"), {"ai.solutions": 0})
    init_flag_file(flag_file(settings.flags_path, "pilot"), {"ai.solutions": 30})
    handle = await _start(env, _ramp_plan(base_url, "1.0.6"), task_queue)
    await _until(handle, env, _waiting("pilot"))
    return await _approved(handle)


def _init_flags(settings: Settings, *environments: str) -> None:
    for name in environments:
        init_flag_file(flag_file(settings.flags_path, name), {"ai.solutions": 0})


def _error_rate(**fields: Any) -> dict[str, Any]:
    return {
        "name": "external-api-error-rate",
        "query": {
            "provider": "prometheus",
            "query": "sum(rate(external_api_errors_total[1m]))"
            " / sum(rate(external_api_requests_total[1m]))",
        },
        "max": 0.05,
        "interval": "10s",
        **fields,
    }


async def contract_failed(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """The bad build serves dev: its AI-suggestions path breaks the contract once the flag is on."""
    _init_flags(settings, "dev")
    desk_dir = settings.state_dir / "desk"
    desk_dir.mkdir(parents=True, exist_ok=True)
    desk_flags = desk_dir / "dev.flagd.json"
    init_flag_file(desk_flags, {**default_flags(), AI_SOLUTIONS: 100})
    desk = SupportDeskProcess(flags_file=desk_flags, build="bad").start()
    try:
        contract = {
            "max_examples": 5,
            "seed": 11,
            "include": ["suggestSolutions"],
            "time_budget": "5m",
        }
        smoke = [{"name": "health", "path": "/healthz"}]
        plan = parse_plan(
            {
                "service": "support-desk",
                "version": "1.3.0",
                "owner": "alice",
                "flags": ["ai.solutions"],
                "stages": [
                    {
                        "name": "dev",
                        "base_url": desk.url,
                        "smoke": smoke,
                        "flags": [{"flag": "ai.solutions"}],
                        "contract": contract,
                    },
                    {"name": "staging", "base_url": desk.url, "smoke": smoke, "contract": contract},
                ],
            }
        )
        handle = await _start(env, plan, task_queue)
        result = await handle.result()
    finally:
        desk.stop()
    assert result.outcome == ReleaseState.ROLLED_BACK and "contract" in result.reason, result
    return handle


async def checks_passed(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """Pre-promotion checks measure three times after dev's flag is on, and hold."""
    _init_flags(settings, "dev")
    data = plan_dict(base_url, version="1.4.0", flags=["ai.solutions"])
    data["stages"] = data["stages"][:2]
    data["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    data["stages"][0]["checks"] = [
        _error_rate(phases=["pre"], count=3),
        {
            "name": "im-channel-up",
            "query": {"provider": "prometheus", "query": "min(im_channel_up)"},
            "min": 1,
            "phases": ["pre"],
        },
    ]
    handle = await _start(env, parse_plan(data), task_queue)
    result = await handle.result()
    assert result.outcome == ReleaseState.PROMOTED, result
    return handle


async def guard_tripped(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """The error rate jumps while pilot bakes at 25%: the guard trips and both flags roll back."""
    _init_flags(settings, "dev", "pilot")
    data = plan_dict(base_url, version="1.5.0", flags=["ai.solutions"])
    data["stages"] = data["stages"][:3]
    data["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    pilot = data["stages"][2]
    pilot.pop("signoff")
    pilot["flags"] = [{"flag": "ai.solutions", "steps": [5, 25, 50], "bake": "10m"}]
    pilot["checks"] = [_error_rate(phases=["guard"])]
    handle = await _start(env, parse_plan(data), task_queue)
    result = await handle.result()
    assert result.outcome == ReleaseState.ROLLED_BACK and "guard" in result.reason, result
    return handle


async def committee_signoff(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """Pilot's sign-off is the release board's: a non-member is refused, two members approve."""
    _init_flags(settings, "dev", "pilot")
    data = _ramp_data(base_url, "1.6.0")
    data["stages"] = data["stages"][:3]  # no production: its gate wants a signed-off file
    data["stages"][2]["signoff"] = {
        "committee": "release-board",
        "quorum": 2,
        "deadline": "2h",
        "escalate_before": "30m",
    }
    handle = await _start(env, parse_plan(data), task_queue)
    await _until(handle, env, _waiting("pilot"))
    service = ReleaseService(TemporalLink(settings, env.client))
    try:
        await service.approve(handle.id, DecisionRequest(stage="pilot", user="grace"))
    except RequestRefused as refused:
        assert refused.code == "NotAMember", refused
    else:
        raise AssertionError("grace is not on the release board, yet her approval counted")
    for user in ("carol", "carol", "erin"):
        await service.approve(handle.id, DecisionRequest(stage="pilot", user=user, comment="ok"))
    result = await handle.result()
    assert result.outcome == ReleaseState.PROMOTED, result
    return handle


async def decision_changed(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """carol approves pilot twice (counted once), then tries to reject it: refused as
    AlreadyDecided and audited; dave's approval completes the quorum."""
    _init_flags(settings, "dev", "pilot")
    handle = await _start(env, _ramp_plan(base_url, "1.10.0"), task_queue)
    await _until(handle, env, _waiting("pilot"))
    service = ReleaseService(TemporalLink(settings, env.client))
    for _ in range(2):
        await service.approve(handle.id, DecisionRequest(stage="pilot", user="carol"))
    try:
        await service.reject(handle.id, DecisionRequest(stage="pilot", user="carol", comment="no"))
    except RequestRefused as refused:
        assert refused.code == "AlreadyDecided", refused
    else:
        raise AssertionError("carol turned her approval into a rejection")
    await service.approve(handle.id, DecisionRequest(stage="pilot", user="dave"))
    result = await handle.result()
    assert result.outcome == ReleaseState.PROMOTED, result
    return handle


async def signoff_expired(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """One approval of two by the deadline: escalation, then rejection and rollback."""
    _init_flags(settings, "dev", "pilot")
    handle = await _start(env, _ramp_plan(base_url, "1.7.0"), task_queue)
    await _until(handle, env, _waiting("pilot"))
    await handle.execute_update(
        ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol", comment="ok")
    )
    result = await handle.result()  # the test server skips time to the deadline
    assert result.outcome == ReleaseState.ROLLED_BACK and "deadline" in result.reason, result
    return handle


async def paused_resumed(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """Paused while pilot bakes at 5%, the release holds before 25% until resumed."""
    _init_flags(settings, "dev", "pilot")
    handle = await _start(env, _ramp_plan(base_url, "1.8.0"), task_queue)
    await _until(handle, env, lambda s: any(x.flag_steps for x in s.stages if x.name == "pilot"))
    await handle.execute_update(
        ReleaseWorkflow.pause, ControlRequest(user="bob", reason="support team briefing")
    )
    await _until(handle, env, lambda s: s.current_step.startswith("paused before"))
    await handle.execute_update(ReleaseWorkflow.resume, ControlRequest(user="bob"))
    await _until(handle, env, _waiting("pilot"))
    return await _approved(handle)


async def checks_inconclusive(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """No metric value on the first run: the release pauses itself, then passes once resumed."""
    _init_flags(settings, "dev")
    data = plan_dict(base_url, version="1.9.0", flags=["ai.solutions"])
    data["stages"] = data["stages"][:1]
    data["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    data["stages"][0]["checks"] = [_error_rate(phases=["pre"])]
    handle = await _start(env, parse_plan(data), task_queue)
    await _until(handle, env, lambda s: s.state == ReleaseState.PAUSED)
    await handle.execute_update(
        ReleaseWorkflow.resume, ControlRequest(user="bob", reason="metrics are back")
    )
    result = await handle.result()
    assert result.outcome == ReleaseState.PROMOTED, result
    return handle


def _proof(settings: Settings, status: Any, user: str, action: str, stage: str | None) -> Any:
    """A proof as the CLI or the API issue one, dated by the test server's clock (which need not
    be the wall clock)."""
    now = max(e.at for e in status.timeline)
    return issuer(settings).sign(
        user=user, action=action, target=status.release_id, stage=stage, now=now
    )


async def verified_decisions(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """A release started with a governance file: a raw approval without a proof is refused and
    audited by the release; pause, resume and two approvals with proofs count."""
    _init_flags(settings, "dev", "pilot")
    service = ReleaseService(TemporalLink(settings, env.client))
    data = _ramp_data(base_url, "2.9.0")
    data["stages"] = data["stages"][:3]  # no production: its gate wants a signed-off file
    started = await service.start(parse_plan(data), "alice", trace_id="trace-replay")
    handle = env.client.get_workflow_handle_for(ReleaseWorkflow.run, started.release_id)
    await _until(handle, env, _waiting("pilot"))
    try:
        await handle.execute_update(
            ReleaseWorkflow.approve, DecisionRequest(stage="pilot", user="carol", comment="ok")
        )
    except WorkflowUpdateFailedError as refused:
        assert getattr(refused.cause, "type", None) == "ProofRequired", refused.cause
    else:
        raise AssertionError("an approval without a proof counted")
    status = await handle.query(ReleaseWorkflow.status)
    for action in ("pause", "resume"):
        proof = _proof(settings, status, "bob", action, None)
        update = ReleaseWorkflow.pause if action == "pause" else ReleaseWorkflow.resume
        await handle.execute_update(update, ControlRequest(user="bob", proof=proof))
    for user in ("carol", "dave"):
        status = await handle.query(ReleaseWorkflow.status)
        proof = _proof(settings, status, user, "approve", "pilot")
        await handle.execute_update(
            ReleaseWorkflow.approve,
            DecisionRequest(stage="pilot", user=user, comment="ok", proof=proof),
        )
    result = await handle.result()
    assert result.outcome == ReleaseState.PROMOTED, result
    return handle


async def access_change_verified(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """An access change asked for with a governance file: a raw approval without a proof is
    refused and audited; two approvals with proofs apply it."""
    from warden.services.access import AccessService

    change_id = await AccessService(TemporalLink(settings, env.client)).request(
        AccessChangeRequest(
            kind="grant", user="grace", role="operator", reason="on-call", requested_by="alice"
        )
    )
    handle = env.client.get_workflow_handle_for(AccessChangeWorkflow.run, change_id)
    for _ in range(200):
        if (await handle.query(AccessChangeWorkflow.status)).members:
            break
        await asyncio.sleep(0.05)
    try:
        await handle.execute_update(AccessChangeWorkflow.approve, AccessDecision(user="carol"))
    except WorkflowUpdateFailedError as refused:
        assert getattr(refused.cause, "type", None) == "ProofRequired", refused.cause
    else:
        raise AssertionError("an approval without a proof counted")
    for user in ("carol", "erin"):
        status = await handle.query(AccessChangeWorkflow.status)
        proof = issuer(settings).sign(
            user=user, action="approve", target=change_id, stage=None, now=status.requested_at
        )
        await handle.execute_update(
            AccessChangeWorkflow.approve, AccessDecision(user=user, proof=proof)
        )
    result = await handle.result()
    assert result.state == "applied", result
    return handle


async def go_no_go(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """Pilot's sign-off gets its go/no-go first; approved, the release writes its notes and
    its retrospective (the test server has no schedules: the pilot health one is noted)."""
    _init_flags(settings, "dev", "pilot")
    handle = await _start(env, _ramp_plan(base_url, "2.0.0"), task_queue)
    await _until(handle, env, _waiting("pilot"))
    status = await handle.query(ReleaseWorkflow.status)
    assert next(s for s in status.stages if s.name == "pilot").go_no_go is not None, status
    return await _approved(handle)


async def go_no_go_rejected(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """Rejected after its go/no-go: rolled back, and the retrospective is written all the same."""
    _init_flags(settings, "dev", "pilot")
    handle = await _start(env, _ramp_plan(base_url, "2.1.0"), task_queue)
    await _until(handle, env, _waiting("pilot"))
    await handle.execute_update(
        ReleaseWorkflow.reject,
        DecisionRequest(stage="pilot", user="erin", comment="the go/no-go says no"),
    )
    result = await handle.result()
    assert result.outcome == ReleaseState.ROLLED_BACK, result
    return handle


async def pilot_health(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    """One run of a pilot health schedule while its release waits at pilot."""
    _init_flags(settings, "dev", "pilot")
    release = await _start(env, _ramp_plan(base_url, "2.2.0"), task_queue)
    await _until(release, env, _waiting("pilot"))
    handle = await env.client.start_workflow(
        PilotHealthWorkflow.run,
        PilotHealthInput(release_id=release.id, stage="pilot", interval_s=86400, trace_id="t"),
        id=f"pilot-health-{release.id}-run-replay",
        task_queue=task_queue,
    )
    summary = await handle.result()
    assert summary is not None and summary.path.endswith(".md"), summary
    await release.terminate("recorded what it was started for")
    return handle


async def governance_review(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, base_url: str
) -> WorkflowHandle[Any, Any]:
    handle = await env.client.start_workflow(
        GovernanceReviewWorkflow.run,
        GovernanceReviewInput(month="2026-11"),
        id="governance-review-monthly-run-replay",
        task_queue=task_queue,
    )
    await handle.result()
    return handle


SCENARIOS: dict[str, Scenario] = {
    "release_promoted": Scenario(promoted),
    "release_rolled_back": Scenario(rolled_back),
    "release_aborted": Scenario(aborted),
    "access_change_applied": Scenario(access_change, governed=True),
    "access_change_decisions": Scenario(access_change_decisions, governed=True),
    "kill_switch": Scenario(kill_switch),
    "release_contract_failed": Scenario(contract_failed),
    "release_checks_passed": Scenario(
        checks_passed, metrics={"external-api-error-rate": [OK], "im-channel-up": [1.0]}
    ),
    # The 5% bake measures 61 times (at 0s, then every 10s); the jump lands during 25%'s bake.
    "release_guard_tripped": Scenario(
        guard_tripped, metrics={"external-api-error-rate": [OK] * 80 + [BAD]}
    ),
    "release_committee_signoff": Scenario(committee_signoff, governed=True),
    "release_signoff_expired": Scenario(signoff_expired),
    "release_decision_changed": Scenario(decision_changed),
    "release_paused_resumed": Scenario(paused_resumed),
    "release_checks_inconclusive": Scenario(
        checks_inconclusive, metrics={"external-api-error-rate": [None, OK]}
    ),
    "release_verified_decisions": Scenario(verified_decisions, governed=True),
    "access_change_verified": Scenario(access_change_verified, governed=True),
    "release_go_no_go": Scenario(go_no_go),
    "release_go_no_go_rejected": Scenario(go_no_go_rejected),
    "pilot_health": Scenario(pilot_health),
    "governance_review": Scenario(governance_review, governed=True),
    "release_live_flag_kept": Scenario(live_flag_kept),
}


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


__all__ = ["SCENARIOS", "Client"]

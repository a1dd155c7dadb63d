"""The flag backend fails while a release rolls back: the release says so, keeps trying, and
once the backend is back it restores every flag exactly and only then reports rolled_back.

A real worker process and the real flagd-file backend. The failure is a real one for a flag
file: something else (here a directory) sits where the file was, so every read and write of
it fails with an I/O error, as it would on a broken flags volume. (A read-only directory would
not stop a worker running as root; this does.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.faults.support import (
    Service,
    WorkerProcess,
    actions,
    audit_rows,
    decide,
    flag_path,
    flag_steps,
    logical_duplicates,
    memo_state,
    promoted_file,
    release_plan,
    result_of,
    signoff,
    start_release,
    wait_memo,
    wait_status,
    write_flag_files,
)
from tests.helpers import RecordingServer
from warden.models.release import ReleaseState


async def test_rollback_retries_while_the_flag_file_is_broken_then_restores_it_exactly(
    dev_env: WorkflowEnvironment,
    shared_worker: WorkerProcess,
    service: tuple[Service, RecordingServer],
    tmp_path: Path,
) -> None:
    _, server = service
    plan = release_plan(
        server.url,
        "outage",
        [
            {"name": "dev", "flags": [{"flag": "desk.ai", "steps": [100]}]},
            {
                "name": "pilot",
                "flags": [{"flag": "desk.ai", "steps": [25, 50]}],
                "signoff": signoff(),
            },
        ],
    )
    settings = shared_worker.settings
    dev_env_name, pilot_env_name = plan.stages[0].env, plan.stages[1].env
    before = write_flag_files(settings, plan)
    dev_file, pilot_file = flag_path(settings, dev_env_name), flag_path(settings, pilot_env_name)

    handle = await start_release(dev_env.client, plan, shared_worker.task_queue)
    await wait_memo(handle, "waiting_approval", "pilot")
    assert pilot_file.read_bytes() == promoted_file(before[pilot_env_name], {"desk.ai": 50})

    # The pilot flag file becomes unusable: a directory now sits at its path.
    aside = tmp_path / "pilot-file-aside.json"
    pilot_file.rename(aside)
    pilot_file.mkdir()
    try:
        await decide(handle, "pilot", "erin", approve=False, comment="support queue is on fire")
        stuck = await wait_status(
            handle,
            lambda s: s.rollback is not None and s.rollback.state == "retrying",
            timeout=120,
        )
        # Honest while it cannot restore: rolling back, retrying, the problem named, no result.
        assert stuck.state == ReleaseState.ROLLING_BACK
        assert stuck.result is None
        assert "rollback cannot complete yet" in stuck.current_step
        assert "cannot read" in stuck.current_step and str(pilot_file) in stuck.current_step
        assert await memo_state(handle) == ("rolling_back", "pilot")
        # The status says "retrying" first; the alert notice and its audit row follow it.
        for _ in range(200):
            rows = audit_rows(settings, plan.release_id)
            if actions(rows)["rollback.retrying"]:
                break
            await asyncio.sleep(0.05)
        assert actions(rows)["rollback.retrying"] == 1
        assert actions(rows)["rollback.completed"] == 0
        assert actions(rows)["release.finished"] == 0
        # What can be restored already is: dev comes before pilot in the snapshot.
        assert dev_file.read_bytes() == before[dev_env_name]
    finally:
        pilot_file.rmdir()
        aside.rename(pilot_file)  # the file is back, still at the release's 50%

    result = await result_of(handle, timeout=120)
    assert result.outcome == ReleaseState.ROLLED_BACK, result.reason
    assert result.reason.startswith("rejected at pilot by erin")
    assert result.rollback is not None and result.rollback.state == "completed"
    assert result.rollback.report is not None and result.rollback.report.verified
    assert dev_file.read_bytes() == before[dev_env_name]
    assert pilot_file.read_bytes() == before[pilot_env_name]

    rows = audit_rows(settings, plan.release_id)
    counts = actions(rows)
    assert counts["rollback.started"] == 1
    assert counts["rollback.retrying"] == 1  # one alert, however many rounds it took
    assert counts["rollback.completed"] == 1
    assert counts["release.finished"] == 1
    assert [r.result for r in rows if r.action == "release.finished"] == ["rolled_back"]
    assert logical_duplicates(rows) == []


async def test_a_flag_write_that_fails_during_a_ramp_is_retried_and_applied_once(
    dev_env: WorkflowEnvironment,
    shared_worker: WorkerProcess,
    service: tuple[Service, RecordingServer],
    tmp_path: Path,
) -> None:
    """A flag backend that fails for a few seconds during a promotion: the step is retried
    (1, 2, 4, 8, 15 s apart), lands once the backend is back, and the ramp goes on."""
    _, server = service
    plan = release_plan(
        server.url,
        "ramp-outage",
        [
            {"name": "dev", "signoff": signoff()},
            {
                "name": "pilot",
                "flags": [{"flag": "desk.ai", "steps": [25, 50]}],
                "signoff": signoff(),
            },
        ],
    )
    settings = shared_worker.settings
    pilot_env_name = plan.stages[1].env
    before = write_flag_files(settings, plan)
    pilot_file = flag_path(settings, pilot_env_name)

    handle = await start_release(dev_env.client, plan, shared_worker.task_queue)
    await wait_memo(handle, "waiting_approval", "dev")
    aside = tmp_path / "pilot-file-aside.json"
    pilot_file.rename(aside)
    pilot_file.mkdir()
    try:
        await decide(handle, "dev", "carol", approve=True)
        await decide(handle, "dev", "dave", approve=True)
        # The pilot's first step fails and is retried: a second attempt, the file named.
        for _ in range(300):
            pending = (await handle.describe()).raw_description.pending_activities
            retried = [
                p for p in pending if p.activity_type.name == "apply_flag_change" and p.attempt >= 2
            ]
            if retried:
                break
            await asyncio.sleep(0.1)
        assert retried, "the failing flag write was not retried"
        assert str(pilot_file) in retried[0].last_failure.message
        assert flag_steps(audit_rows(settings, plan.release_id)) == {}
        assert await memo_state(handle) == ("running", "pilot")
    finally:
        pilot_file.rmdir()
        aside.rename(pilot_file)

    await wait_memo(handle, "waiting_approval", "pilot")
    assert pilot_file.read_bytes() == promoted_file(before[pilot_env_name], {"desk.ai": 50})
    rows = audit_rows(settings, plan.release_id)
    assert flag_steps(rows) == {
        (f"desk.ai@{pilot_env_name}", 25): 1,
        (f"desk.ai@{pilot_env_name}", 50): 1,
    }
    assert logical_duplicates(rows) == []
    await decide(handle, "pilot", "erin", approve=False, comment="enough")
    result = await result_of(handle, timeout=120)
    assert result.outcome == ReleaseState.ROLLED_BACK
    assert pilot_file.read_bytes() == before[pilot_env_name]

"""The metric source goes down mid-ramp: missing evidence is never a pass. The release pauses
with the flag held where it was (neither widened nor rolled back), waits for a person, and
goes on only when resumed, once the metrics are back.

How each provider turns an unreachable or empty source into an inconclusive check is covered
in tests/metrics (test_prometheus.py, test_semantics.py); this is the release's side of it,
with a real worker process, the flagd-file backend and a loopback metrics endpoint.
"""

from __future__ import annotations

import asyncio

from temporalio.testing import WorkflowEnvironment

from tests.faults.support import (
    Service,
    WorkerProcess,
    actions,
    audit_rows,
    error_rate_guard,
    flag_path,
    flag_steps,
    logical_duplicates,
    memo_state,
    promoted_file,
    query_status,
    release_plan,
    result_of,
    start_release,
    wait_status,
    write_flag_files,
)
from tests.helpers import RecordingServer
from warden.models.release import ControlRequest, ReleaseState
from workflows.release import ReleaseWorkflow


async def test_a_guard_without_metrics_pauses_the_ramp_until_resumed(
    dev_env: WorkflowEnvironment,
    shared_worker: WorkerProcess,
    service: tuple[Service, RecordingServer],
) -> None:
    desk, server = service
    plan = release_plan(
        server.url,
        "blind",
        [
            {
                "name": "pilot",
                "flags": [{"flag": "desk.blind", "steps": [50, 100], "bake": "3s"}],
                "checks": [error_rate_guard(consecutive_error_limit=1)],
            }
        ],
    )
    settings = shared_worker.settings
    env = plan.stages[0].env
    before = write_flag_files(settings, plan)
    file = flag_path(settings, env)
    desk.metrics_down.add("blind/pilot")

    handle = await start_release(dev_env.client, plan, shared_worker.task_queue)
    paused = await wait_status(handle, lambda s: s.state == ReleaseState.PAUSED, timeout=60)
    assert paused.pause_reason is not None and "inconclusive" in paused.pause_reason
    assert paused.result is None
    assert await memo_state(handle) == ("paused", "pilot")
    assert file.read_bytes() == promoted_file(before[env], {"desk.blind": 50})

    # Nobody resumes: it stays paused, the flag stays at 50%, nothing is promoted.
    await asyncio.sleep(3)
    still = await query_status(handle)
    assert still is not None and still.state == ReleaseState.PAUSED and still.result is None
    assert file.read_bytes() == promoted_file(before[env], {"desk.blind": 50})

    desk.metrics_down.clear()
    await handle.execute_update(
        ReleaseWorkflow.resume, ControlRequest(user="bob", reason="metrics are back")
    )
    result = await result_of(handle, timeout=90)
    assert result.outcome == ReleaseState.PROMOTED, result.reason
    assert file.read_bytes() == promoted_file(before[env], {"desk.blind": 100})

    rows = audit_rows(settings, plan.release_id)
    tripped = [r for r in rows if r.action == "guard.tripped"]
    assert [r.result for r in tripped] == ["inconclusive"]
    assert actions(rows)["release.paused"] == 1 and actions(rows)["release.resumed"] == 1
    assert flag_steps(rows) == {(f"desk.blind@{env}", 50): 1, (f"desk.blind@{env}", 100): 1}
    assert logical_duplicates(rows) == []

"""The Temporal server goes away and comes back over the same database file while one release
waits at its sign-off gate and another bakes: both pick up where they were and finish, with
the worker that was running all along, flags exact and every audit event recorded once.

The server is the embedded dev server exactly as Release Warden starts it
(`warden.runtime.devserver.server_command`: fixed port, `--db-filename` in the state dir, the Warden
search attributes). The first outage is a clean stop (SIGTERM) during a guarded bake, an
activity running on the worker; the second a crash (SIGKILL) during an unguarded bake, a
durable timer held by the server.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from tests.faults.support import (
    DevServerProcess,
    Service,
    WorkerProcess,
    actions,
    audit_rows,
    connect,
    decide,
    error_rate_guard,
    flag_path,
    flag_steps,
    logical_duplicates,
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

DOWN_FOR_S = 2.0


async def outage(server: DevServerProcess, sig: int) -> None:
    pid = server.process.pid if server.process else None
    await asyncio.to_thread(server.stop, sig)
    await asyncio.sleep(DOWN_FOR_S)
    await server.start()
    assert server.process is not None and server.process.pid != pid


async def test_a_waiting_and_a_baking_release_resume_after_server_restarts(
    own_server: DevServerProcess,
    workers: Any,
    service: tuple[Service, RecordingServer],
) -> None:
    _, http = service
    await own_server.start()
    client = await connect(own_server.address)
    worker: WorkerProcess = workers(own_server.address)
    worker.start()
    await worker.ready()
    settings = worker.settings

    gate = release_plan(
        http.url,
        "gate",
        [
            {"name": "dev", "flags": [{"flag": "desk.gate", "steps": [100]}]},
            {
                "name": "pilot",
                "flags": [{"flag": "desk.gate", "steps": [50, 100]}],
                "signoff": signoff(),
            },
        ],
    )
    bake = release_plan(
        http.url,
        "bake",
        [
            {
                "name": "dev",
                "flags": [{"flag": "desk.bake", "steps": [100]}],
                "checks": [error_rate_guard()],
                "bake": "6s",
            },
            {"name": "pilot", "flags": [{"flag": "desk.bake", "steps": [25, 100], "bake": "4s"}]},
        ],
    )
    before = {**write_flag_files(settings, gate), **write_flag_files(settings, bake)}
    gate_handle = await start_release(client, gate, worker.task_queue, search_attributes=True)
    bake_handle = await start_release(client, bake, worker.task_queue, search_attributes=True)

    await wait_memo(gate_handle, "waiting_approval", "pilot")
    await wait_status(bake_handle, lambda s: s.current_step == "bake 6s in dev", timeout=60)
    await outage(own_server, signal.SIGTERM)  # a guard is measuring on the worker meanwhile

    await wait_status(
        bake_handle, lambda s: s.current_step == "desk.bake at 25% baking 4s", timeout=90
    )
    await outage(own_server, signal.SIGKILL)  # the bake is a timer on the server now

    # The gate waited through both outages; the committee signs off now.
    await wait_memo(gate_handle, "waiting_approval", "pilot")
    await decide(gate_handle, "pilot", "carol", approve=True)
    await decide(gate_handle, "pilot", "dave", approve=True)

    gate_result = await result_of(gate_handle, timeout=120)
    bake_result = await result_of(bake_handle, timeout=120)
    assert gate_result.outcome == ReleaseState.PROMOTED, gate_result.reason
    assert bake_result.outcome == ReleaseState.PROMOTED, bake_result.reason
    assert bake_result.promoted_stages == ["dev", "pilot"]
    assert own_server.starts == 3
    assert worker.started == 1 and worker.alive(), "the worker rode out both outages by itself"

    for plan, flag in ((gate, "desk.gate"), (bake, "desk.bake")):
        for stage in plan.stages:
            path = flag_path(settings, stage.env)
            assert path.read_bytes() == promoted_file(before[stage.env], {flag: 100}), path.name
        rows = audit_rows(settings, plan.release_id)
        assert logical_duplicates(rows) == []
        counts = actions(rows)
        assert counts["release.started"] == 1 and counts["release.finished"] == 1
        assert counts["stage.promoted"] == len(plan.stages)
        assert all(n == 1 for n in flag_steps(rows).values())
    assert sorted(flag_steps(audit_rows(settings, bake.release_id))) == [
        ("desk.bake@bake-dev", 100),
        ("desk.bake@bake-pilot", 25),
        ("desk.bake@bake-pilot", 100),
    ]
    approvals = [r for r in audit_rows(settings, gate.release_id) if r.action == "signoff.approval"]
    assert sorted(r.userId for r in approvals) == ["carol", "dave"]

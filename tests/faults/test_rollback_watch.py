"""Audit time is the time things happened, also when the worker dies during a retrying rollback
while someone watches: the rows and the status say when the flags really came back, and the
watch prints each line once.

A real worker process (killed with SIGKILL and started again), the real flagd-file backend made
unusable the way a broken volume is (a directory where the file was), `warden release watch` as
its own process.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.faults.support import (
    Service,
    WorkerProcess,
    actions,
    audit_rows,
    decide,
    flag_path,
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
from workflows.release import ReleaseWorkflow

WARDEN = str(Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "warden")


async def test_a_worker_killed_during_a_retrying_rollback_keeps_the_times_true(
    dev_env: WorkflowEnvironment,
    workers: Callable[[str], WorkerProcess],
    service: tuple[Service, RecordingServer],
    tmp_path: Path,
) -> None:
    _, server = service
    worker = workers(dev_env.client.service_client.config.target_host)
    worker.start()
    await worker.ready()
    plan = release_plan(
        server.url,
        "watched",
        [
            {"name": "dev", "flags": [{"flag": "desk.ai", "steps": [100]}]},
            {
                "name": "pilot",
                "flags": [{"flag": "desk.ai", "steps": [25, 50]}],
                "signoff": signoff(),
            },
        ],
    )
    settings = worker.settings
    before = write_flag_files(settings, plan)
    pilot_file = flag_path(settings, plan.stages[1].env)
    handle = await start_release(dev_env.client, plan, worker.task_queue)
    await wait_memo(handle, "waiting_approval", "pilot")

    watch = await asyncio.create_subprocess_exec(
        WARDEN, "release", "watch", plan.release_id, "--interval", "0.2",
        env=worker.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    aside = tmp_path / "pilot-file-aside.json"
    pilot_file.rename(aside)
    pilot_file.mkdir()
    try:
        await decide(handle, "pilot", "erin", approve=False, comment="support queue is on fire")
        await wait_status(
            handle,
            lambda s: s.rollback is not None and s.rollback.state == "retrying",
            timeout=120,
        )
        worker.kill()  # in the middle of the retries
        await asyncio.sleep(2)
        worker.start()
        await worker.ready()
        await asyncio.sleep(3)
    finally:
        pilot_file.rmdir()
        aside.rename(pilot_file)
        restored_after = datetime.now(UTC)

    result = await result_of(handle, timeout=180)
    out, err = await asyncio.wait_for(watch.communicate(), 120)
    assert result.outcome == ReleaseState.ROLLED_BACK, result.reason
    assert pilot_file.read_bytes() == before[plan.stages[1].env]

    rows = audit_rows(settings, plan.release_id)
    assert actions(rows)["rollback.completed"] == 1 and actions(rows)["release.finished"] == 1
    at = {r.action: r.timestamp for r in rows if r.action.startswith(("rollback.", "release.f"))}
    # the flags came back only once the file was back: so did the row saying so
    assert at["rollback.started"] < restored_after <= at["rollback.completed"]
    assert at["rollback.completed"] <= at["release.finished"]

    status = await handle.query(ReleaseWorkflow.status)
    assert status.rollback is not None and status.rollback.finished_at is not None
    assert status.rollback.started_at < restored_after <= status.rollback.finished_at
    assert status.rollback.finished_at <= result.finished_at

    printed = (out + err).decode()
    assert printed.count("flags restored and verified") == 1, printed

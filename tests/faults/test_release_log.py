"""The retrospective goes into release_log.md exactly once, even when the worker writing it is
killed in the middle: once while it waits to append (the log is locked), once after the new
file is in place but before the activity reports back (the audit database is locked, so the
activity cannot finish). Real worker processes, killed with SIGKILL by their PID."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable
from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.testing import WorkflowEnvironment

from activities.reports.store import entries
from tests.faults.support import (
    Service,
    WorkerProcess,
    audit_rows,
    release_plan,
    result_of,
    start_release,
)
from tests.helpers import RecordingServer
from warden.models.release import ReleaseState


async def _attempt_started(handle: Any, activity: str, attempt: int, timeout: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if (
                pending.activity_type.name == activity
                and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                and pending.attempt >= attempt
            ):
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{activity} attempt {attempt} never started")


async def test_one_entry_per_release_after_workers_die_during_the_append(
    dev_env: WorkflowEnvironment,
    workers: Callable[[str], WorkerProcess],
    service: tuple[Service, RecordingServer],
) -> None:
    _, server = service
    address = dev_env.client.service_client.config.target_host
    first = workers(address)
    settings = first.settings
    log = settings.release_log_path
    log.parent.mkdir(parents=True, exist_ok=True)
    plan = release_plan(server.url, "retro", [{"name": "dev"}])

    # 1. the release log is locked by someone else: the retrospective waits inside its append
    lock = os.open(log.with_name(log.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    first.start()
    await first.ready()
    handle = await start_release(dev_env.client, plan, first.task_queue)
    await _attempt_started(handle, "write_retrospective", 1)
    first.kill()
    assert entries(log) == []

    # 2. the next worker appends, then cannot record it (the audit database is locked) and dies
    database = sqlite3.connect(settings.audit_url.removeprefix("sqlite:///"), timeout=30)
    database.execute("BEGIN IMMEDIATE")
    second = workers(address)
    second.start()
    await second.ready()
    fcntl.flock(lock, fcntl.LOCK_UN)
    os.close(lock)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while not entries(log):
        assert loop.time() < deadline, f"no entry appended:\n{second.log_tail()}"
        await asyncio.sleep(0.1)
    second.kill()
    database.rollback()
    database.close()

    # 3. a third worker finishes the activity: the entry is there already, so none is added
    third = workers(address)
    third.start()
    await third.ready()
    result = await result_of(handle, timeout=120)
    assert result.outcome == ReleaseState.PROMOTED

    run_id = handle.result_run_id or handle.first_execution_run_id
    assert entries(log) == [(plan.release_id, run_id)]
    assert log.read_text().count(f"release={plan.release_id} ") == 1
    rows = audit_rows(settings, plan.release_id)
    assert [r.action for r in rows].count("release.retrospective") == 1
    assert (first.kills, second.kills) == (1, 1)

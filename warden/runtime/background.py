"""Embedded mode on one machine: a background worker beside the embedded dev server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from warden.errors import Unavailable
from warden.runtime import devserver
from warden.settings import Settings

RECENT_POLL = timedelta(seconds=30)


class NoWorker(Unavailable):
    """No worker polls the task queue (or the background one could not start)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def background_worker_pid(settings: Settings) -> int | None:
    path = settings.resolved_state_dir / "worker.pid"
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


async def has_pollers(client: Client, settings: Settings) -> bool:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    now = datetime.now(UTC)
    return any(
        now - p.last_access_time.ToDatetime(tzinfo=UTC) < RECENT_POLL for p in response.pollers
    )


async def ensure_worker(client: Client, settings: Settings) -> int | None:
    """Start `python -m worker` in the background unless a worker already polls; return its pid."""
    if not settings.embedded or not settings.autostart_worker:
        return None
    pid = background_worker_pid(settings)
    if pid is not None or await has_pollers(client, settings):
        return pid
    state = settings.resolved_state_dir
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "worker.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "WARDEN_STATE_DIR": str(state)},
        )
    (state / "worker.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NoWorker(
                f"the background worker exited with code {process.returncode}; "
                f"see {state / 'worker.log'}"
            )
        if await has_pollers(client, settings):
            break
        await asyncio.sleep(0.2)
    return process.pid


def stop_worker(settings: Settings) -> bool:
    pid = background_worker_pid(settings)
    (settings.resolved_state_dir / "worker.pid").unlink(missing_ok=True)
    return devserver.terminate_pid(pid) if pid else False

"""Embedded mode on one machine: a background worker beside the embedded dev server.

The background worker keeps the environment it started with. Each command that needs it
compares the settings a worker reads (`worker_settings`) with the ones the worker was started
with (`<state dir>/worker.json`) and restarts it when they differ, so that a governance file,
flag directory or webhook exported after the first command is the one the worker uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
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


#: The settings a worker acts on (the rest are the CLI's and the API's own).
WORKER_SETTINGS = (
    "env",
    "temporal_namespace",
    "task_queue",
    "governance_file",
    "flags_dir",
    "flag_backend",
    "audit_db_url",
    "artifacts_dir",
    "release_log",
    "unleash_url",
    "unleash_token",
    "unleash_project",
    "unleash_environments",
    "unleash_stage_field",
    "prometheus_url",
    "prometheus_token",
    "prometheus_username",
    "prometheus_password",
    "http_timeout_s",
    "webhook_urls",
    "workflow_sandbox",
    "max_cached_workflows",
    "max_concurrent_activities",
    "worker_metrics_port",
)


def worker_settings(settings: Settings) -> dict[str, str]:
    """What a worker started now would act on; secrets (and webhook URLs, which carry them)
    only as a short hash."""
    out: dict[str, str] = {}
    for name in WORKER_SETTINGS:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
            secret = True
        else:
            secret = name == "webhook_urls"
        text = "" if value is None else str(value)
        if secret and text:
            text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]
        out[name] = text
    return out


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment of a background worker started for `settings`: every setting as the
    WARDEN_* variable that gives it, so a worker started by `warden api` (whose settings may
    not come from its environment) acts on the same server, state and backends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        env["WARDEN_" + name.upper()] = text
    env["WARDEN_STATE_DIR"] = str(settings.resolved_state_dir)
    return env


def recorded_worker_settings(settings: Settings) -> dict[str, str] | None:
    """The settings the background worker was started with, if it records them."""
    try:
        data = json.loads((settings.resolved_state_dir / "worker.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    recorded = data.get("settings") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else None


def settings_differ(settings: Settings) -> list[str]:
    """Which worker settings of this shell differ from the running background worker's."""
    recorded = recorded_worker_settings(settings)
    if recorded is None:
        return []
    current = worker_settings(settings)
    return [name for name in WORKER_SETTINGS if recorded.get(name, "") != current[name]]


def background_worker_pid(settings: Settings) -> int | None:
    path = settings.resolved_state_dir / "worker.pid"
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


async def has_pollers(
    client: Client, settings: Settings, *, within: timedelta = RECENT_POLL
) -> bool:
    """Whether a worker polled the task queue in the last `within` (the server lists pollers
    for a few minutes; one idle in a long poll was last seen up to about a minute ago)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    now = datetime.now(UTC)
    return any(now - p.last_access_time.ToDatetime(tzinfo=UTC) < within for p in response.pollers)


async def ensure_worker(
    client: Client, settings: Settings, *, on_restart: Callable[[str], None] | None = None
) -> int | None:
    """Start `python -m worker` in the background unless a worker already polls; return its pid.

    A background worker started with other settings than these is restarted (`on_restart`
    hears why)."""
    if not settings.embedded or not settings.autostart_worker:
        return None
    pid = background_worker_pid(settings)
    if pid is not None:
        changed = settings_differ(settings)
        if not changed:
            return pid
        stop_worker(settings)
        if on_restart is not None:
            names = ", ".join("WARDEN_" + name.upper() for name in changed)
            on_restart(f"restarted the background worker: {names} changed since it started")
    elif await has_pollers(client, settings):
        return None
    state = settings.resolved_state_dir
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "worker.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=worker_environment(settings),
        )
    (state / "worker.pid").write_text(str(process.pid))
    (state / "worker.json").write_text(
        json.dumps({"pid": process.pid, "settings": worker_settings(settings)}, indent=2)
    )
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
    (settings.resolved_state_dir / "worker.json").unlink(missing_ok=True)
    return devserver.terminate_pid(pid) if pid else False

"""The Release Warden worker: activities (with their clients) and workflows on one task queue.

Run it with `python worker.py` or `warden worker`. Many workers may poll the same task
queue against a real Temporal cluster; each needs the same settings (flag backend, audit
database, Prometheus, webhooks).
"""

from __future__ import annotations

import asyncio
import compileall
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.audit import AuditActivities
from activities.flags import FlagActivities, build_backend
from activities.governance import GovernanceActivities
from activities.notify import NoticeActivities
from activities.smoke import SmokeActivities
from warden.audit import AuditStore
from warden.governance import GovernanceStore
from warden.settings import Settings
from workflows import WORKFLOWS

log = logging.getLogger("warden.worker")

#: Modules the workflow sandbox may share with the worker instead of re-importing per run.
PASSTHROUGH_MODULES = (
    "warden",
    "activities",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "yaml",
)


def workflow_runner(
    settings: Settings, *, extra_passthrough: Sequence[str] = ()
) -> SandboxedWorkflowRunner:
    """The sandbox every workflow run executes in.

    With `workflow_sandbox = "shared"` (the default) the `workflows` package is passed through
    as well: it is imported once, and each run still gets its own sandboxed event loop and
    restricted builtins. That saves re-importing `workflows.release` for every run started or
    replayed, about 180 KiB and a few milliseconds of CPU each (1,000 parked releases: 273 MB
    instead of 450 MB). What it gives up is the sandbox's check of what the workflow modules import
    and call; the workflow tests and the replay tests run `isolated`, which keeps it.
    """
    passthrough: tuple[str, ...] = (*PASSTHROUGH_MODULES, *extra_passthrough)
    if settings.workflow_sandbox == "shared":
        passthrough = (*passthrough, "workflows")
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*passthrough)
    )


def build_activities(settings: Settings, stack: AsyncExitStack | None = None) -> list[Any]:
    """Every activity, bound to its clients, from settings alone."""
    store = AuditStore(settings.audit_url)
    governance = GovernanceActivities(settings.governance_file, GovernanceStore(settings.audit_url))
    flags = FlagActivities(build_backend(settings))
    activities: list[Any] = [
        SmokeActivities().run_smoke_checks,
        AuditActivities(store).record_audit_events,
        NoticeActivities(settings.webhook_urls, store).send_notice,
        governance.resolve_members,
        governance.governance_status,
        governance.apply_access_change,
        flags.check_flags,
        flags.snapshot_flags,
        flags.read_flags,
        flags.apply_flag_change,
        flags.restore_flags,
    ]
    activities += _optional_activities(settings)
    if stack is not None:
        stack.callback(store.close)
        stack.push_async_callback(flags.backend.aclose)
    return activities


def _optional_activities(settings: Settings) -> list[Any]:
    """Gates whose modules carry heavy imports load them here, once per worker."""
    found: list[Any] = []
    try:
        from activities.contract import ContractActivities
    except ImportError:  # pragma: no cover - the module ships with Release Warden
        pass
    else:
        found.append(ContractActivities(settings).run_contract_tests)
    try:
        from activities.metrics import MetricActivities
    except ImportError:  # pragma: no cover
        pass
    else:
        metrics = MetricActivities.from_settings(settings)
        found.append(metrics.run_checks)
    return found


def precompile_workflows() -> None:
    """Write the workflow modules' bytecode once, when it is missing or stale.

    The sandbox imports a workflow's module afresh for every run it starts (and again after an
    eviction). Where Python does not write bytecode itself (PYTHONDONTWRITEBYTECODE, common in
    containers) it would compile `workflows/release.py` from source each time, about 25 ms of
    CPU per run. A directory that cannot be written is left as it is.
    """
    import workflows

    compileall.compile_dir(Path(workflows.__file__).parent, maxlevels=0, quiet=2)


def build_worker(
    client: Client,
    settings: Settings,
    *,
    task_queue: str | None = None,
    activities: Sequence[Any] | None = None,
    stack: AsyncExitStack | None = None,
) -> Worker:
    precompile_workflows()
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=list(activities)
        if activities is not None
        else build_activities(settings, stack),
        activity_executor=ThreadPoolExecutor(max_workers=settings.max_concurrent_activities),
        workflow_runner=workflow_runner(settings),
        max_cached_workflows=settings.max_cached_workflows,
        max_concurrent_activities=settings.max_concurrent_activities,
    )


def install_runtime(settings: Settings) -> Runtime | None:
    """Serve the SDK's Prometheus metrics (activity and workflow timings, gate metrics) when asked."""
    if settings.worker_metrics_port is None:
        return None
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"127.0.0.1:{settings.worker_metrics_port}")
        )
    )
    Runtime.set_default(runtime, error_if_already_set=False)
    return runtime


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    from warden.client import connect

    install_runtime(settings)
    client = await connect(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    async with AsyncExitStack() as stack:
        worker = build_worker(client, settings, stack=stack)
        log.info("worker polling task queue %s at %s", settings.task_queue, settings.target_address)
        async with worker:
            await stop.wait()
        log.info("worker stopped")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_worker(Settings()))


if __name__ == "__main__":
    main()

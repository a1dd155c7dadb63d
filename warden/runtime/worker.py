"""The worker's wiring: every activity (with its clients) and every workflow on one task queue.

`python worker.py` and `warden worker` run `main`; tests, benchmarks, the demo and the replay
tests build the same worker (or its sandbox) here.
"""

from __future__ import annotations

import asyncio
import compileall
import logging
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.activity import _Definition as _ActivityDefinition
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.audit import AuditActivities
from activities.flags import FlagActivities
from activities.governance import GovernanceActivities
from activities.notify import NoticeActivities
from activities.reports import ReportActivities
from activities.smoke import SmokeActivities
from warden import tracing
from warden.flagstore import build_backend
from warden.runtime.client import connect
from warden.settings import Settings
from warden.stores.audit import AuditStore
from warden.stores.governance import GovernanceStore
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
    "cryptography",
    "opentelemetry",
)


class _BindTraceId(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        trace_id = getattr(input.args[0], "trace_id", None) if input.args else None
        with tracing.bound(trace_id if isinstance(trace_id, str) else None):
            return await self.next.execute_activity(input)


class TraceIdInterceptor(Interceptor):
    """Each activity's outgoing calls carry its input's trace id, also the calls that are not
    handed one (the flag backends: `warden.http.trace_headers` falls back to it)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindTraceId(next)


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


def build_activities(
    settings: Settings, stack: AsyncExitStack, client: Client | None = None
) -> list[Any]:
    """Every activity, bound to its clients, from settings alone; `stack` closes the clients
    (HTTP pools, stores, the flag backend) when the worker stops. `client` is the worker's own
    Temporal client, for the activities that read histories and keep schedules (reports)."""
    # The contract and metric modules carry heavy imports (schemathesis); loaded here, once.
    from activities.contract import ContractActivities
    from activities.metrics import MetricActivities

    store = AuditStore(settings.audit_url)
    stack.callback(store.close)
    governance = GovernanceActivities(settings.governance_file, GovernanceStore(settings.audit_url))
    stack.callback(governance.close)
    flags = FlagActivities(build_backend(settings))
    stack.push_async_callback(flags.backend.aclose)
    smoke = SmokeActivities()
    stack.push_async_callback(smoke.aclose)
    notices = NoticeActivities(settings.webhook_urls, store)
    stack.push_async_callback(notices.aclose)
    metrics = MetricActivities.from_settings(settings)
    stack.push_async_callback(metrics.aclose)
    reports = ReportActivities(settings, store, flags.backend, client)
    return [
        smoke.run_smoke_checks,
        AuditActivities(store).record_audit_events,
        notices.send_notice,
        governance.resolve_members,
        governance.governance_status,
        governance.apply_access_change,
        flags.check_flags,
        flags.snapshot_flags,
        flags.read_flags,
        flags.apply_flag_change,
        flags.restore_flags,
        ContractActivities(settings).run_contract_tests,
        metrics.run_checks,
        *reports.activities(),
    ]


def with_overrides(activities: Sequence[Any], overrides: Sequence[Any]) -> list[Any]:
    """`activities` with each one registered under an override's activity name swapped for it
    (tests and benchmarks script one activity and keep the others real)."""
    names = {activity_name(fn) for fn in overrides}
    return [fn for fn in activities if activity_name(fn) not in names] + list(overrides)


def activity_name(fn: Any) -> str:
    definition = _ActivityDefinition.from_callable(fn)
    return definition.name if definition and definition.name else fn.__name__


def precompile_workflows() -> None:
    """Write the workflow modules' bytecode once, when it is missing or stale.

    The sandbox imports a workflow's module afresh for every run it starts (and again after an
    eviction). Where Python does not write bytecode itself (PYTHONDONTWRITEBYTECODE, common in
    containers) it would compile `workflows/release.py` from source each time, about 25 ms of
    CPU per run. A directory that cannot be written is left as it is.
    """
    import workflows

    compileall.compile_dir(Path(workflows.__file__).parent, maxlevels=0, quiet=2)


def worker_options(
    client: Client,
    settings: Settings,
    *,
    stack: AsyncExitStack,
    task_queue: str | None = None,
    activities: Sequence[Any] | None = None,
    overrides: Sequence[Any] = (),
) -> dict[str, Any]:
    """What `build_worker` gives `temporalio.worker.Worker` (benchmarks vary one of them)."""
    precompile_workflows()
    chosen = (
        list(activities) if activities is not None else build_activities(settings, stack, client)
    )
    return {
        "task_queue": task_queue or settings.task_queue,
        "workflows": WORKFLOWS,
        "activities": with_overrides(chosen, overrides),
        "workflow_runner": workflow_runner(settings),
        "max_cached_workflows": settings.max_cached_workflows,
        "max_concurrent_activities": settings.max_concurrent_activities,
        # The client's TracingInterceptor (when tracing is on) applies to the worker as well.
        "interceptors": [TraceIdInterceptor()],
    }


def build_worker(client: Client, settings: Settings, **options: Any) -> Worker:
    """The worker on `settings.task_queue` with every activity; `options` as `worker_options`
    takes them (`stack`, and `task_queue`, `activities` or `overrides` to change)."""
    return Worker(client, **worker_options(client, settings, **options))


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
    install_runtime(settings)
    tracing.setup("release-warden-worker")
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


class ExpectedFailures(logging.Filter):
    """An activity failure the activity raised on purpose (an `ApplicationError`: a flag that
    does not exist, a flag backend that is down during a restore, a webhook that refused) is
    one line; anything else (a bug) keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ApplicationError):
            where: dict[str, Any] = getattr(record, "temporal_activity", None) or {}
            then = "not retried" if error.non_retryable else "retried"
            message = " ".join(str(error.message).split())
            record.msg = (
                f"activity {where.get('activity_type', '?')} failed, {then} (attempt "
                f"{where.get('attempt', '?')}, {where.get('workflow_id', '?')}): "
                f"{error.type or 'ApplicationError'}: {message}"
            )
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """The worker's log: one line per expected activity failure, no line per HTTP request."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    activity_log = logging.getLogger("temporalio.activity")
    if not any(isinstance(f, ExpectedFailures) for f in activity_log.filters):
        activity_log.addFilter(ExpectedFailures())
    for noisy in ("httpx", "httpcore"):  # a line for every probe and every metrics scrape
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> None:
    configure_logging()
    asyncio.run(run_worker(Settings()))

"""The fault suite's building blocks: real worker and server processes, the loopback service the
releases probe, flag files, and the checks every fault test makes on the outcome.

Processes are started with `subprocess.Popen` and stopped by their PID, never by name.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from warden.flagstore.flagd_file import (
    SCHEMA_URL,
    apply_percent,
    boolean_flag,
    dump_flag_document,
    flag_file,
    percent_of,
    write_json_atomic,
)
from warden.models.audit import AuditEvent, AuditQuery
from warden.models.plan import ReleasePlan, parse_plan
from warden.models.release import (
    DecisionOutcome,
    DecisionRequest,
    ReleaseInput,
    ReleaseOptions,
    ReleaseResult,
    ReleaseStatus,
)
from warden.runtime.devserver import is_listening, server_command
from warden.settings import Settings
from warden.stores.audit import AuditStore
from workflows.release import ReleaseWorkflow

REPO = Path(__file__).resolve().parents[2]
#: The line worker.py logs once its worker is built and about to poll.
READY = "worker polling task queue"
STARTED_BY = "alice"


# -- processes -------------------------------------------------------------------------------


def _stop_pid(process: subprocess.Popen[bytes], sig: int, grace: float) -> None:
    """Send `sig` to this one process; SIGKILL it if it is still there after `grace` seconds."""
    if process.poll() is not None:
        return
    try:
        os.kill(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class WorkerProcess:
    """`python worker.py` with WARDEN_* settings; `kill()` is SIGKILL, `start()` a new process."""

    def __init__(self, address: str, task_queue: str, state_dir: Path, logs: Path) -> None:
        self.address = address
        self.task_queue = task_queue
        self.state_dir = state_dir
        self.logs = logs
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0
        self.kills = 0
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        self.env.update(
            {
                "WARDEN_TEMPORAL_ADDRESS": address,
                "WARDEN_TASK_QUEUE": task_queue,
                "WARDEN_STATE_DIR": str(state_dir),
                "WARDEN_WEBHOOK_URLS": "",
                "WARDEN_AUTOSTART_WORKER": "false",
                "WARDEN_HTTP_TIMEOUT_S": "5",
                "PYTHONUNBUFFERED": "1",
            }
        )

    @property
    def settings(self) -> Settings:
        """The settings the worker reads (flag files and audit database live under them)."""
        return Settings(
            state_dir=self.state_dir,
            temporal_address=self.address,
            flags_dir=None,
            audit_db_url=None,
        )

    @property
    def log_path(self) -> Path:
        return self.logs / f"worker-{self.started}.log"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "a worker is running"
        self.started += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    async def ready(self, timeout: float = 60.0) -> None:
        """Wait for the worker's polling line; fail with its log if it exits first."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while READY not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if loop.time() > deadline:
                raise AssertionError(f"worker not polling after {timeout:.0f}s:\n{self.log_tail()}")
            await asyncio.sleep(0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to the server, in-flight work is simply lost."""
        assert self.process is not None
        _stop_pid(self.process, signal.SIGKILL, 10)
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            _stop_pid(self.process, signal.SIGTERM, 15)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class DevServerProcess:
    """The embedded dev server exactly as Release Warden runs it (`warden.runtime.devserver`), on a fixed
    port and database file, so it can be stopped and started again over the same state."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.settings = Settings(state_dir=state_dir, dev_server_port=port)
        self.db_file = self.settings.resolved_state_dir / "temporal.db"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        return self.settings.dev_server_address

    async def start(self, timeout: float = 60.0) -> None:
        assert self.process is None or self.process.poll() is not None, "the server is running"
        self.settings.resolved_state_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.settings.resolved_state_dir / "temporal.log", "ab") as log:
            self.process = subprocess.Popen(
                server_command(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        port = self.settings.dev_server_port
        while not is_listening("127.0.0.1", port):
            if self.process.poll() is not None:
                raise AssertionError(f"the dev server exited with {self.process.returncode}")
            if loop.time() > deadline:
                raise AssertionError(f"the dev server is not listening on {port}")
            await asyncio.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM (then SIGKILL after a grace period) or SIGKILL straight away: a crash."""
        if self.process is not None:
            _stop_pid(self.process, sig, 20)


async def connect(address: str, timeout: float = 60.0) -> Client:
    """A client once the server answers (right after a start it may still be warming up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            client = await Client.connect(address, data_converter=pydantic_data_converter)
            await client.count_workflows()
            return client
        except (RPCError, RuntimeError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.3)


# -- the service the releases probe -----------------------------------------------------------


class Service:
    """Answers `/<release>/<stage>/healthz` and `/<release>/<stage>/metrics.json` on loopback.

    `unhealthy` holds "<release>/<stage>" prefixes whose smoke check fails (503). `breaks` maps a
    prefix to (flag file, flag, percent): the stage's error rate jumps once that flag serves at
    least `percent`%, read from the real flag file, as a service behind the flag would.
    `metrics_down` prefixes answer 503 on metrics (the metric source is unavailable).
    """

    OK_RATE, BAD_RATE = 0.01, 0.5

    def __init__(self) -> None:
        self.unhealthy: set[str] = set()
        self.breaks: dict[str, tuple[Path, str, int]] = {}
        self.metrics_down: set[str] = set()

    def handler(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        prefix, _, leaf = path.split("?")[0].strip("/").rpartition("/")
        if leaf == "healthz":
            if prefix in self.unhealthy:
                return 503, {"Content-Type": "text/plain"}, b"down"
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if leaf == "metrics.json":
            if prefix in self.metrics_down:
                return 503, {"Content-Type": "text/plain"}, b"metrics unavailable"
            rate = self.OK_RATE
            if prefix in self.breaks:
                file, flag, percent = self.breaks[prefix]
                definition = json.loads(file.read_text())["flags"][flag]
                if percent_of(flag, definition)[1] >= percent:
                    rate = self.BAD_RATE
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"error_rate": rate}).encode(),
            )
        return 404, {"Content-Type": "text/plain"}, b"not found"


def error_rate_guard(**fields: Any) -> dict[str, Any]:
    """A guard on the stage's `/metrics.json` error rate, measured every second."""
    return {
        "name": "error-rate",
        "query": {"provider": "http-json", "url": "/metrics.json", "json_path": "error_rate"},
        "max": 0.05,
        "interval": "1s",
        "phases": ["guard"],
        **fields,
    }


def signoff() -> dict[str, Any]:
    return {"approvers": ["carol", "dave", "erin"], "quorum": 2, "deadline": "2h"}


def release_plan(service_url: str, key: str, stages: list[dict[str, Any]]) -> ReleasePlan:
    """A plan whose stages live under `<service>/<key>/<stage>` with flag environments
    `<key>-<stage>`, so every release has flag files of its own."""
    flags: list[str] = []
    for stage in stages:
        stage.setdefault("environment", f"{key}-{stage['name']}")
        stage.setdefault("base_url", f"{service_url}/{key}/{stage['name']}")
        stage.setdefault("smoke", [{"name": "health", "path": "/healthz"}])
        flags += [r["flag"] for r in stage.get("flags", []) if r["flag"] not in flags]
    return parse_plan(
        {
            "service": "support-desk",
            "version": f"{key}.{uuid.uuid4().hex[:8]}",
            "owner": "alice",
            "flags": flags,
            "stages": stages,
        }
    )


async def start_release(
    client: Client, plan: ReleasePlan, task_queue: str, *, search_attributes: bool = False
) -> WorkflowHandle[ReleaseWorkflow, ReleaseResult]:
    return await client.start_workflow(
        ReleaseWorkflow.run,
        ReleaseInput(
            plan=plan,
            started_by=STARTED_BY,
            trace_id=f"trace-{uuid.uuid4().hex[:8]}",
            options=ReleaseOptions(search_attributes=search_attributes),
        ),
        id=plan.release_id,
        task_queue=task_queue,
    )


# -- flag files -------------------------------------------------------------------------------

#: A flag no release touches, with its own bucketing and metadata: it must come through unchanged.
BYSTANDER = {
    "state": "ENABLED",
    "variants": {"on": True, "off": False},
    "defaultVariant": "off",
    "targeting": {
        "fractional": [
            {"cat": [{"var": "$flagd.flagKey"}, {"var": "customerId"}]},
            ["on", 30],
            ["off", 70],
        ]
    },
    "metadata": {"owner": "desk-team"},
}


def write_flag_files(settings: Settings, plan: ReleasePlan, percent: int = 0) -> dict[str, bytes]:
    """One flag file per environment of `plan`, with its flags at `percent` and a bystander flag;
    returns each file's bytes before the release."""
    before: dict[str, bytes] = {}
    for stage in plan.stages:
        path = flag_path(settings, stage.env)
        if stage.env in before:
            continue
        doc = {
            "$schema": SCHEMA_URL,
            "metadata": {"id": stage.env},
            "flags": {
                **{flag: boolean_flag(percent) for flag in plan.flags},
                "desk.bystander": BYSTANDER,
            },
        }
        write_json_atomic(path, doc)
        before[stage.env] = path.read_bytes()
    return before


def flag_path(settings: Settings, environment: str) -> Path:
    return flag_file(settings.flags_path, environment)


def promoted_file(before: bytes, final: dict[str, int]) -> bytes:
    """The file as it must be after a promotion: `final` flags at their last step, all else kept."""
    doc = json.loads(before)
    for flag, percent in final.items():
        doc["flags"][flag] = apply_percent(doc["flags"][flag], percent, flag)
    return dump_flag_document(doc).encode()


# -- audit ------------------------------------------------------------------------------------


def audit_rows(settings: Settings, release_id: str) -> list[AuditEvent]:
    """Every audit row of a release, through the audit store's own query API."""
    store = AuditStore(settings.audit_url)
    try:
        return store.query(AuditQuery(releaseId=release_id, limit=100_000))
    finally:
        store.close()


def logical_duplicates(rows: list[AuditEvent]) -> list[tuple[Any, ...]]:
    """Rows that record the same thing twice (same action, entity, user, result and details),
    whatever their event ids."""
    keys = Counter(
        (r.action, r.entity, r.userId, r.result, json.dumps(r.details, sort_keys=True))
        for r in rows
    )
    return [key for key, count in keys.items() if count > 1]


def actions(rows: list[AuditEvent]) -> Counter[str]:
    return Counter(r.action for r in rows)


def flag_steps(rows: list[AuditEvent]) -> Counter[tuple[str, int]]:
    """(flag@environment, percent) of every flag.changed row."""
    return Counter(
        (r.entity.removeprefix("flag:"), r.details["percent"])
        for r in rows
        if r.action == "flag.changed"
    )


# -- talking to a release that may have no worker right now -----------------------------------


async def memo_state(handle: WorkflowHandle[Any, Any]) -> tuple[str, str]:
    """(state, stage) from the workflow's memo: answered by the server, no worker needed."""
    memo = await (await handle.describe()).memo()
    return str(memo.get("state", "")), str(memo.get("stage", ""))


async def wait_memo(
    handle: WorkflowHandle[Any, Any], state: str, stage: str, timeout: float = 120.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            if await memo_state(handle) == (state, stage):
                return
        except RPCError:
            pass  # the server may be restarting
        if loop.time() > deadline:
            raise AssertionError(f"{handle.id} never reached {state} at {stage}")
        await asyncio.sleep(0.2)


async def query_status(
    handle: WorkflowHandle[Any, Any], timeout: float = 3.0
) -> ReleaseStatus | None:
    """The status query, or None when no worker answers in time."""
    try:
        return await asyncio.wait_for(handle.query(ReleaseWorkflow.status), timeout)
    except (TimeoutError, RPCError):
        return None


async def wait_status(
    handle: WorkflowHandle[Any, Any],
    predicate: Callable[[ReleaseStatus], bool],
    timeout: float = 120.0,
) -> ReleaseStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: ReleaseStatus | None = None
    while True:
        status = await query_status(handle)
        if status is not None:
            last = status
            if predicate(status):
                return status
        if loop.time() > deadline:
            seen = f"{last.state.value}: {last.current_step}" if last else "no answer"
            raise AssertionError(f"{handle.id}: condition not reached ({seen})")
        await asyncio.sleep(0.2)


async def decide(
    handle: WorkflowHandle[Any, Any],
    stage: str,
    user: str,
    *,
    approve: bool,
    comment: str = "",
    timeout: float = 120.0,
) -> DecisionOutcome:
    """Send a decision until the workflow answers it. The update id is fixed, so a retry after
    a lost answer is the same request, never a second decision."""
    update = ReleaseWorkflow.approve if approve else ReleaseWorkflow.reject
    request = DecisionRequest(stage=stage, user=user, comment=comment)
    update_id = f"{'approve' if approve else 'reject'}-{stage}-{user}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await asyncio.wait_for(handle.execute_update(update, request, id=update_id), 20)
        except (TimeoutError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def result_of(
    handle: WorkflowHandle[Any, ReleaseResult], timeout: float = 150.0
) -> ReleaseResult:
    """The workflow's result from its history (no worker needed to read it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await asyncio.wait_for(handle.result(), max(1.0, deadline - loop.time()))
        except RPCError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)

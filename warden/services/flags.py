"""Flags from the outside: read them, the operator's audited kill switch, flag files for the
embedded backend, and restoring a release's flags by hand when its own rollback cannot.

The kill switch runs as a short workflow (`FlagChangeWorkflow`) so it is retried, audited and
works wherever the workers run. A force-restore takes the state a release captured before it
touched anything, from its status, or from its history when no worker answers, writes it back
and reads every flag again: `verified` is true only if all of them match.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from warden import tracing
from warden.errors import BackendFailed, Refused, WardenError
from warden.flagstore import (
    FlagBackend,
    FlagBackendError,
    FlagConfigError,
    build_backend,
    local_backend,
    read_flags,
    restore_and_verify,
)
from warden.flagstore.flagd_file import FlagdFileBackend, FlagFileUpdate, flag_file, init_flag_file
from warden.models.flags import (
    FlagChangeInput,
    FlagOperation,
    FlagOperationResult,
    FlagReadRequest,
    FlagSnapshot,
    FlagState,
    KillSwitchOutcome,
)
from warden.models.release import ReleaseState, ReleaseStatus
from warden.runtime.background import NoWorker, has_pollers
from warden.runtime.client import NO_ANSWER, TemporalLink
from warden.services.releases import ReleaseService, trace_search_attributes
from warden.settings import Settings
from workflows.flags import FlagChangeWorkflow, FlagReadWorkflow

#: Ids of the workflows that read flags for `warden flags show` when this machine cannot;
#: `temporal workflow list --query "WorkflowType != 'FlagReadWorkflow'"` leaves them out.
FLAG_READ_PREFIX = "flags-read-"


@dataclass
class FlagReading:
    """Flags as read, and where: `here` (this machine reached the backend) or `workers`."""

    states: list[FlagState]
    where: Literal["here", "workers"]


def short_id() -> str:
    return uuid.uuid4().hex[:8]


def failure_message(exc: WorkflowFailureError) -> str:
    """The innermost readable message of a workflow that failed."""
    inner: BaseException | None = exc.cause
    while inner is not None and getattr(inner, "cause", None) is not None:
        inner = inner.cause  # type: ignore[attr-defined]
    if isinstance(inner, ApplicationError):
        return inner.message
    return str(inner or exc)


@dataclass
class Captured:
    """What a release captured before it changed anything, and what it changed."""

    snapshots: dict[str, FlagSnapshot]
    changed: list[tuple[str, str]]  # (environment, flag)
    source: Literal["status", "history"]


@dataclass
class Restored:
    verified: bool
    environments: list[str]
    flags: list[str]
    source: Literal["status", "history"]
    restored: list[FlagState] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


class FlagService:
    def __init__(self, temporal: TemporalLink) -> None:
        self.temporal = temporal
        self.settings = temporal.settings

    async def change(self, op: FlagOperation) -> FlagOperationResult:
        """The kill switch: set one flag in one environment, audited, as `op.user`."""
        client = await self._worker_client()
        try:
            with tracing.in_trace(op.trace_id):
                return await client.execute_workflow(
                    FlagChangeWorkflow.run,
                    op,
                    id=f"flags-{op.environment}-{op.flag}-{short_id()}",
                    task_queue=self.settings.task_queue,
                    static_summary=f"{op.user}: {op.flag} → {op.percent}% in {op.environment}",
                    search_attributes=trace_search_attributes(self.settings, op.trace_id),
                )
        except WorkflowFailureError as exc:
            raise WardenError(failure_message(exc)) from None

    async def kill_switch(self, op: FlagOperation) -> KillSwitchOutcome:
        """`change`, and the running releases whose next step or rollback may change it again."""
        result = await self.change(op)
        return KillSwitchOutcome(
            result=result, releases_touching=await self.releases_touching(op.flag, op.environment)
        )

    def local_backend(self) -> FlagBackend | None:
        return local_backend(self.settings)

    async def read(
        self, environments: list[str], flags: list[str], *, via_workers: bool = False
    ) -> FlagReading:
        """`flags` (or every flag) in `environments` (or every environment there is).

        Read here when this machine reaches the backend itself; otherwise (or `via_workers`)
        where the workers run, with a short `FlagReadWorkflow` marked `kind: flag-read` in
        its memo, which `warden release list` never shows."""
        backend = None if via_workers else self.local_backend()
        if backend is not None:
            try:
                return FlagReading(await read_flags(backend, environments, flags), "here")
            except FlagConfigError as exc:
                raise WardenError(str(exc)) from None
            except FlagBackendError:
                pass  # not reachable from here (a network the workers are on): ask them
            finally:
                await backend.aclose()
        client = await self._worker_client()
        try:
            states = await client.execute_workflow(
                FlagReadWorkflow.run,
                FlagReadRequest(environments=environments, flags=flags),
                id=f"{FLAG_READ_PREFIX}{short_id()}",
                task_queue=self.settings.task_queue,
                memo={"kind": "flag-read"},
                static_summary="flag read for `warden flags show`",
            )
        except WorkflowFailureError as exc:
            raise WardenError(failure_message(exc)) from None
        return FlagReading(states, "workers")

    async def _worker_client(self) -> Client:
        """The client, once a worker is known to poll: a flag change waits for its workflow,
        and without a worker it would wait for ever."""
        client = await self.temporal.client()
        if not await has_pollers(client, self.settings, within=timedelta(minutes=5)):
            raise NoWorker(
                f"no worker polls task queue {self.settings.task_queue}; start one with "
                "`warden worker`"
            )
        return client

    async def releases_touching(self, flag: str, environment: str) -> list[str]:
        """Running releases whose plan ramps this flag in this environment."""
        found = []
        client = await self.temporal.client()
        async for execution in client.list_workflows(
            "WorkflowType = 'ReleaseWorkflow' AND ExecutionStatus = 'Running'"
        ):
            memo = await execution.memo()
            if flag in memo.get("flags", []) and environment in memo.get("environments", []):
                found.append(execution.id)
        return found

    async def force_restore(
        self, releases: ReleaseService, release_id: str, environments: list[str] | None
    ) -> Restored:
        """Put a release's flags back exactly as captured, read back; refused while it runs."""
        try:
            captured = captured_from_status(await releases.status(release_id))
        except NoWorker:
            captured = await captured_from_history(await self.temporal.client(), release_id)
        except RPCError as exc:
            if exc.status not in NO_ANSWER:
                raise
            captured = await captured_from_history(await self.temporal.client(), release_id)
        backend = build_backend(self.settings)
        try:
            return await restore_captured(backend, captured, environments)
        finally:
            await backend.aclose()


def _require_flag_files(settings: Settings) -> None:
    if settings.flag_backend != "flagd-file":
        raise WardenError(
            "flag files are for the flagd-file backend; WARDEN_FLAG_BACKEND is "
            + settings.flag_backend
        )


def add_flags(
    settings: Settings, environments: Iterable[str], flags: dict[str, int]
) -> list[FlagFileUpdate]:
    """Add flags to the embedded backend's files, creating the files that do not exist; a flag
    a file already defines is left exactly as it is, and so is every other flag. Every file is
    read first, so one that cannot be used stops the command before any file is written."""
    _require_flag_files(settings)
    backend = FlagdFileBackend(settings.flags_path)
    environments = list(environments)
    try:
        for environment in environments:
            backend.add_missing(environment, flags, dry_run=True)
        return [backend.add_missing(environment, flags) for environment in environments]
    except (FlagConfigError, FlagBackendError) as exc:
        raise WardenError(str(exc)) from None


def _update_line(update: FlagFileUpdate) -> str:
    """`<path>: created with a, b` / `added a; left alone b (25%)` / `left alone b (25%)`."""
    parts = []
    if update.added:
        parts.append(("created with " if update.created else "added ") + ", ".join(update.added))
    elif update.created:
        parts.append("created")
    if update.kept:
        kept = ", ".join(
            f"{s.flag} (serves {'?' if s.percent is None else s.percent}%)" for s in update.kept
        )
        parts.append(f"left alone {kept}")
    return f"{update.path}: {'; '.join(parts) or 'nothing to add'}"


def update_lines(updates: Iterable[FlagFileUpdate]) -> list[str]:
    """One line per flag file saying what `add_flags` did to it."""
    return [_update_line(u) for u in updates]


def init_flag_files(
    settings: Settings, environments: Iterable[str], flags: dict[str, int]
) -> list[tuple[str, bool]]:
    """flagd files for the embedded backend: (path, created) per environment; an existing file
    is left alone."""
    _require_flag_files(settings)
    made = []
    for environment in environments:
        path = flag_file(settings.flags_path, environment)
        made.append((str(path), init_flag_file(path, flags)))
    return made


def captured_from_status(status: ReleaseStatus) -> Captured:
    if not status.paused and status.state in (ReleaseState.RUNNING, ReleaseState.WAITING_APPROVAL):
        raise Refused(
            f"release {status.release_id} is {status.state.value} and may change its flags "
            "again; pause or abort it first",
            "ReleaseActive",
        )
    changed = []
    for entry in status.flags_changed:
        flag, _, environment = entry.rpartition("@")
        if flag and environment:
            changed.append((environment, flag))
    return Captured({s.environment: s for s in status.snapshots}, changed, "status")


async def captured_from_history(client: Client, release_id: str) -> Captured:
    """The snapshot activity's result and every flag change the workflow scheduled, from its history."""
    handle = client.get_workflow_handle(release_id)
    snapshot_scheduled: set[int] = set()
    snapshots: dict[str, FlagSnapshot] = {}
    changed: list[tuple[str, str]] = []
    converter = client.data_converter
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            name = attrs.activity_type.name
            if name == "snapshot_flags":
                snapshot_scheduled.add(event.event_id)
            elif name == "apply_flag_change" and attrs.input.payloads:
                [change_input] = await converter.decode(attrs.input.payloads, [FlagChangeInput])
                key = (change_input.change.environment, change_input.change.flag)
                if key not in changed:
                    changed.append(key)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs_done = event.activity_task_completed_event_attributes
            if attrs_done.scheduled_event_id in snapshot_scheduled and attrs_done.result.payloads:
                [taken] = await converter.decode(attrs_done.result.payloads, [list[FlagSnapshot]])
                snapshots.update({s.environment: s for s in taken})
    return Captured(snapshots, changed, "history")


async def restore_captured(
    backend: FlagBackend, captured: Captured, environments: Iterable[str] | None
) -> Restored:
    wanted_envs = list(dict.fromkeys(env for env, _ in captured.changed))
    if environments is not None:
        only = set(environments)
        wanted_envs = [e for e in wanted_envs if e in only]
    flags = list(dict.fromkeys(flag for env, flag in captured.changed if env in wanted_envs))
    if not wanted_envs:
        raise Refused(
            "the release changed no flags in the environments asked for", "NothingToRestore"
        )
    result = Restored(verified=True, environments=wanted_envs, flags=flags, source=captured.source)
    for env in wanted_envs:
        names = [flag for e, flag in captured.changed if e == env]
        snapshot = captured.snapshots.get(env)
        if snapshot is None:
            result.mismatches += [f"{name} in {env} (no captured state)" for name in names]
            continue
        states = [s for s in snapshot.flags if s.flag in names]
        try:
            restored, mismatches = await restore_and_verify(backend, env, states)
        except (FlagBackendError, FlagConfigError) as exc:
            raise BackendFailed(
                f"flag backend failed restoring {env}: {exc}", "FlagBackendError"
            ) from None
        result.restored += restored
        result.mismatches += mismatches
    result.verified = not result.mismatches
    return result

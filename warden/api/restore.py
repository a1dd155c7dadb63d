"""Force-restore: put a release's flags back exactly as captured before it touched them, by hand.

The workflow restores flags itself when a release stops. This is the operator's path for when
that cannot happen (a rollback retrying against a broken backend, no worker, or a promoted
release that must be undone): the captured state comes from the release's status query, or,
when no worker answers, from the snapshot activity's result in the workflow's event history.
Every flag is read back after the write; `verified` is true only if all of them match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from warden.flagstore import FlagBackend, FlagBackendError, FlagConfigError
from warden.models.flags import FlagChangeInput, FlagSnapshot, FlagState
from warden.models.release import ReleaseState, ReleaseStatus


class RestoreRefused(Exception):
    """Nothing to restore, or restoring now would fight the running release."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class RestoreFailed(Exception):
    """The flag backend failed while restoring."""


@dataclass
class Captured:
    snapshots: dict[str, FlagSnapshot]
    changed: list[tuple[str, str]]  # (environment, flag) the release changed
    source: Literal["status", "history"]


@dataclass
class Restored:
    verified: bool
    environments: list[str]
    flags: list[str]
    restored: list[FlagState] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


def captured_from_status(status: ReleaseStatus) -> Captured:
    if not status.paused and status.state in (ReleaseState.RUNNING, ReleaseState.WAITING_APPROVAL):
        raise RestoreRefused(
            "ReleaseActive",
            f"release {status.release_id} is {status.state.value} and may change its flags again; "
            "pause or abort it first",
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
        raise RestoreRefused(
            "NothingToRestore", "the release changed no flags in the environments asked for"
        )
    result = Restored(verified=True, environments=wanted_envs, flags=flags)
    for env in wanted_envs:
        names = [flag for e, flag in captured.changed if e == env]
        snapshot = captured.snapshots.get(env)
        if snapshot is None:
            result.mismatches += [f"{name} in {env} (no captured state)" for name in names]
            continue
        states = [s for s in snapshot.flags if s.flag in names]
        try:
            await backend.restore(env, states)
            after = {s.flag: s for s in await backend.read(env, [s.flag for s in states])}
        except (FlagBackendError, FlagConfigError) as exc:
            raise RestoreFailed(f"flag backend failed restoring {env}: {exc}") from None
        for state in states:
            now = after.get(state.flag)
            if now is None or now.exists != state.exists or now.definition != state.definition:
                result.mismatches.append(f"{state.flag} in {env}")
            else:
                result.restored.append(now)
    result.verified = not result.mismatches
    return result

"""Flag activities: presence check, snapshot, one ramp step, exact restore with read-back."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from warden.flagstore import (
    FlagBackend,
    FlagBackendError,
    FlagConfigError,
    FlagNotFound,
    digest,
    read_flags,
    restore_and_verify,
)
from warden.models.flags import (
    FlagChangeInput,
    FlagChangeResult,
    FlagPresence,
    FlagsInput,
    FlagSnapshot,
    FlagState,
    RestoreInput,
    RestoreReport,
)


def _config_error(exc: FlagConfigError) -> ApplicationError:
    kind = "FlagNotFound" if isinstance(exc, FlagNotFound) else "BackendConfigError"
    return ApplicationError(str(exc), type=kind, non_retryable=True)


class FlagActivities:
    def __init__(self, backend: FlagBackend) -> None:
        self.backend = backend

    @activity.defn(name="check_flags")
    async def check_flags(self, input: FlagsInput) -> list[FlagPresence]:
        presence = []
        for env in input.environments:
            states = await self._read(env, input.flags)
            presence.append(
                FlagPresence(
                    environment=env,
                    present=[s.flag for s in states if s.exists],
                    missing=[s.flag for s in states if not s.exists],
                )
            )
        return presence

    @activity.defn(name="snapshot_flags")
    async def snapshot_flags(self, input: FlagsInput) -> list[FlagSnapshot]:
        """Capture, then read back: the rollback plan is ready only if both reads agree."""
        snapshots = []
        for env in input.environments:
            first = await self._read(env, input.flags)
            second = await self._read(env, input.flags)
            if digest(first) != digest(second):
                raise ApplicationError(
                    f"flags in {env} changed while the snapshot was taken; retrying",
                    type="SnapshotUnstable",
                )
            snapshots.append(
                FlagSnapshot(
                    backend=self.backend.name,
                    environment=env,
                    taken_at=datetime.now(UTC),
                    flags=first,
                    digest=digest(first),
                )
            )
        return snapshots

    @activity.defn(name="read_flags")
    async def read_flags(self, input: FlagsInput) -> list[FlagState]:
        """`input.flags` (or every flag) in `input.environments` (or every one there is)."""
        try:
            return await read_flags(self.backend, input.environments, input.flags)
        except FlagConfigError as exc:
            raise _config_error(exc) from None
        except FlagBackendError as exc:
            raise ApplicationError(str(exc), type="FlagBackendError") from exc

    @activity.defn(name="apply_flag_change")
    async def apply_flag_change(self, input: FlagChangeInput) -> FlagChangeResult:
        change = input.change
        try:
            result = await self.backend.set_percent(change.environment, change.flag, change.percent)
        except FlagConfigError as exc:
            raise _config_error(exc) from None
        except FlagBackendError as exc:
            raise ApplicationError(str(exc), type="FlagBackendError") from exc
        activity.logger.info(
            "flag %s in %s set to %d%% (%s) for %s",
            change.flag,
            change.environment,
            change.percent,
            "changed" if result.changed else "already there",
            input.release_id,
        )
        return result

    @activity.defn(name="restore_flags")
    async def restore_flags(self, input: RestoreInput) -> RestoreReport:
        """Write the snapshot back, then read every flag again; `verified` only if all match."""
        restored: list[FlagState] = []
        mismatches: list[str] = []
        for snapshot in input.snapshots:
            if snapshot.environment not in input.environments:
                continue
            wanted = [s for s in snapshot.flags if s.flag in input.flags]
            if not wanted:
                continue
            try:
                ok, differ = await restore_and_verify(self.backend, snapshot.environment, wanted)
            except (FlagBackendError, FlagConfigError) as exc:
                # A rollback never gives up: even a missing or broken flag file is retried
                # (and alerted on by the workflow) until an operator mends it.
                raise ApplicationError(str(exc), type="FlagBackendError") from exc
            restored += ok
            mismatches += differ
        return RestoreReport(
            verified=not mismatches,
            restored=restored,
            mismatches=mismatches,
            attempts=activity.info().attempt,
            reason=input.reason,
        )

    async def _read(self, env: str, flags: list[str]) -> list[FlagState]:
        try:
            return await self.backend.read(env, flags)
        except FlagConfigError as exc:
            raise _config_error(exc) from None
        except FlagBackendError as exc:
            raise ApplicationError(str(exc), type="FlagBackendError") from exc

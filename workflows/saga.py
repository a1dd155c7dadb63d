"""The flag saga: before the first change, prove the flags exist and capture them; when the release
stops, put back exactly what it changed, read it back, and never report a restore it did not verify.

Checklist items 2 (flags present) and 5 (rollback plan ready) are proven here, before any stage
runs. Every flag is recorded as changed before it is written, so a write that fails halfway is
rolled back too.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.ledger import ReleaseLedger
from workflows.stop import ReleaseStop, gate_activity

with workflow.unsafe.imports_passed_through():
    from activities.flags import FlagActivities
    from warden.models.flags import (
        FlagPresence,
        FlagsInput,
        FlagSnapshot,
        RestoreInput,
        RestoreReport,
    )
    from warden.models.release import (
        ChecklistKey,
        ItemStatus,
        ReleaseInput,
        ReleaseState,
        RollbackRecord,
    )
    from workflows import policies
    from workflows.common import cause

MAX_ROLLBACK_BACKOFF = timedelta(minutes=5)


class FlagSaga:
    def __init__(self, input: ReleaseInput, ledger: ReleaseLedger) -> None:
        self._input = input
        self._plan = input.plan
        self._ledger = ledger
        self.snapshots: dict[str, FlagSnapshot] = {}
        self.changed: list[tuple[str, str]] = []  # (environment, flag) in the order first touched

    # -- before the first change -----------------------------------------------------------------

    async def prepare(self) -> None:
        """Checklist items 2 and 5, before the first change: flags exist, state captured and read back."""
        ledger = self._ledger
        ramped = [s for s in self._plan.stages if s.flags]
        for stage in self._plan.stages:
            if not stage.flags:
                ledger.item(
                    stage.name,
                    ChecklistKey.FLAGS,
                    ItemStatus.NOT_APPLICABLE,
                    "the stage changes no flags",
                )
                ledger.item(
                    stage.name,
                    ChecklistKey.ROLLBACK_PLAN,
                    ItemStatus.NOT_APPLICABLE,
                    "nothing to roll back",
                )
        if not self._plan.flags or not ramped:
            return
        environments = list(dict.fromkeys(s.env for s in ramped))
        flags_input = FlagsInput(
            release_id=ledger.release_id,
            environments=environments,
            flags=self._plan.flags,
            trace_id=self._input.trace_id,
        )
        ledger.step("checking the plan's flags exist in the flag backend")
        presence: list[FlagPresence] = await gate_activity(
            "flags",
            None,
            workflow.execute_activity_method(
                FlagActivities.check_flags, flags_input, **policies.flag_read_options()
            ),
        )
        missing = [f"{flag} ({p.environment})" for p in presence for flag in p.missing]
        await ledger.audit(
            "flags.checked",
            "failed" if missing else "passed",
            details={"missing": missing, "environments": environments},
        )
        for stage in ramped:
            if missing:
                ledger.item(
                    stage.name,
                    ChecklistKey.FLAGS,
                    ItemStatus.FAILED,
                    "missing: " + ", ".join(missing),
                )
            else:
                ledger.item(
                    stage.name,
                    ChecklistKey.FLAGS,
                    ItemStatus.PASSED,
                    f"{len(self._plan.flags)} flag(s) present in {stage.env}",
                )
        if missing:
            raise ReleaseStop(
                ReleaseState.FAILED,
                "flags missing in the flag backend: " + ", ".join(missing),
                "flags",
                ramped[0].name,
            )
        ledger.step("capturing the flags' current state (rollback plan)")
        snapshots: list[FlagSnapshot] = await gate_activity(
            "flags",
            None,
            workflow.execute_activity_method(
                FlagActivities.snapshot_flags, flags_input, **policies.flag_read_options()
            ),
        )
        self.snapshots = {s.environment: s for s in snapshots}
        ledger.status.snapshots = snapshots
        for stage in ramped:
            snap = self.snapshots.get(stage.env)
            if snap is None:
                ledger.item(
                    stage.name, ChecklistKey.ROLLBACK_PLAN, ItemStatus.FAILED, "no snapshot taken"
                )
                raise ReleaseStop(
                    ReleaseState.FAILED, f"no flag snapshot for {stage.env}", "flags", stage.name
                )
            ledger.item(
                stage.name,
                ChecklistKey.ROLLBACK_PLAN,
                ItemStatus.PASSED,
                f"snapshot of {len(snap.flags)} flag(s) in {stage.env} read back "
                f"(sha256 {snap.digest[:12]})",
            )
        await ledger.record(
            "flags.snapshot",
            "captured",
            "flag state captured in " + ", ".join(environments),
            details={s.environment: s.digest for s in snapshots},
        )

    # -- while ramping ---------------------------------------------------------------------------

    def touch(self, environment: str, flag: str) -> None:
        """Recorded before the write: a write that fails halfway is still rolled back."""
        if (environment, flag) not in self.changed:
            self.changed.append((environment, flag))
            self._ledger.status.flags_changed = [f"{f}@{e}" for e, f in self.changed]

    def percent_before(self, environment: str, flag: str) -> int | None:
        """What `flag` served in `environment` before this step: the last step, else the snapshot."""
        for stage_status in reversed(self._ledger.status.stages):
            for step in reversed(stage_status.flag_steps):
                if step.state == "skipped":
                    continue  # the flag kept what it served
                if step.environment == environment and step.flag == flag:
                    return step.percent
        snapshot = self.snapshots.get(environment)
        state = next((f for f in snapshot.flags if f.flag == flag), None) if snapshot else None
        return state.percent if state else None

    # -- compensation ------------------------------------------------------------------------------

    async def compensate(self, stop: ReleaseStop) -> bool:
        """Restore every flag the release changed (in scope), verified; False when none was."""
        ledger = self._ledger
        scope_envs = list(dict.fromkeys(env for env, _ in self.changed))
        if self._plan.rollback.scope == "stage" and stop.stage:
            stage_env = ledger.stage(stop.stage).environment
            scope_envs = [e for e in scope_envs if e == stage_env]
        if not scope_envs:
            return False
        flags = list(dict.fromkeys(flag for env, flag in self.changed if env in scope_envs))
        record = RollbackRecord(reason=stop.reason, trigger=stop.trigger, started_at=workflow.now())
        ledger.status.rollback = record
        ledger.status.state = ReleaseState.ROLLING_BACK
        ledger.step("rolling back flags: " + ", ".join(flags))
        ledger.publish()
        await ledger.audit(
            "rollback.started",
            "started",
            details={"reason": stop.reason, "flags": flags, "environments": scope_envs},
        )
        restore = RestoreInput(
            release_id=ledger.release_id,
            snapshots=[self.snapshots[e] for e in scope_envs if e in self.snapshots],
            flags=flags,
            environments=scope_envs,
            reason=stop.reason,
            trace_id=self._input.trace_id,
        )
        report = await self._restore_until_verified(restore, flags)
        record.report = report
        record.state = "completed"
        record.finished_at = workflow.now()
        restored = ", ".join(f"{s.flag}@{s.environment}={s.percent}%" for s in report.restored)
        await ledger.record(
            "rollback.completed",
            "restored",
            f"flags restored and verified: {restored}",
            details={
                "restored": [
                    s.model_dump(mode="json", exclude={"definition"}) for s in report.restored
                ],
                "reason": stop.reason,
            },
        )
        await ledger.notify(
            "rollback-completed",
            f"Rolled back: {ledger.release_id}",
            f"Reason: {stop.reason}. Restored and verified: {restored}.",
            severity="critical",
            audience=["operations", "owner", "committee"],
        )
        return True

    async def _restore_until_verified(
        self, restore: RestoreInput, flags: list[str]
    ) -> RestoreReport:
        """Rounds of restore and read-back until they match; alerted once, then retried with backoff."""
        ledger = self._ledger
        record = ledger.status.rollback
        assert record is not None
        backoff = timedelta(seconds=5)
        alerted = False
        await ledger.flush()
        while True:
            problem = ""
            try:
                report: RestoreReport = await workflow.execute_activity_method(
                    FlagActivities.restore_flags, restore, **policies.flag_restore_options()
                )
                if report.verified:
                    return report
                problem = "read-back differs for " + ", ".join(report.mismatches)
            except ActivityError as exc:
                problem = cause(exc)
            record.state = "retrying"
            ledger.step(f"rollback cannot complete yet ({problem}); retrying")
            if not alerted:
                alerted = True
                await ledger.notify(
                    "rollback-stuck",
                    f"Rollback of {ledger.release_id} cannot complete",
                    f"Restoring {', '.join(flags)} failed: {problem}. Release Warden keeps "
                    "retrying; see docs/runbook.md to restore by hand.",
                    severity="critical",
                    audience=["operations", "owner"],
                )
                await ledger.record(
                    "rollback.retrying",
                    "failed",
                    f"rollback failing: {problem}; retrying",
                    details={"problem": problem},
                )
            await workflow.sleep(backoff)
            backoff = min(backoff * 2, MAX_ROLLBACK_BACKOFF)

"""ReleaseWorkflow: a release walks its stages in order and proves each one safe before going on.

Deterministic code only. Every effect (probes, contract runs, metric queries, flag writes,
audit rows, notices) is an activity; timeouts and retries come from `workflows.policies`.

One workflow per release rather than a child workflow per stage: approvals, pause, resume
and abort are updates validated against one state, and a whole release stays within a few
hundred history events because guards watch metrics inside one long-running activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.flags import FlagActivities
    from activities.governance import GovernanceActivities
    from activities.smoke import SmokeActivities
    from warden.models.common import format_duration
    from warden.models.contract import ContractInput, ContractReport
    from warden.models.flags import (
        FlagChange,
        FlagChangeInput,
        FlagPresence,
        FlagsInput,
        FlagSnapshot,
        FlagStepRecord,
        RestoreInput,
        RestoreReport,
    )
    from warden.models.governance import GovernanceStatus
    from warden.models.metrics import (
        CheckAction,
        ChecksInput,
        ChecksOutcome,
        ChecksReport,
        CheckState,
    )
    from warden.models.notice import Notice
    from warden.models.plan import Stage
    from warden.models.release import (
        CHECKLIST_TITLES,
        AbortRequest,
        Alert,
        ChecklistItem,
        ChecklistKey,
        ControlOutcome,
        ControlRequest,
        DecisionOutcome,
        DecisionRequest,
        ItemStatus,
        RefusalRecord,
        ReleaseInput,
        ReleaseResult,
        ReleaseState,
        ReleaseStatus,
        RollbackRecord,
        StageState,
        StageStatus,
        TimelineEvent,
    )
    from warden.models.signoff import Decision, Members, MembersInput, SignoffState
    from warden.models.smoke import SmokeInput
    from workflows import policies
    from workflows.common import (
        AUDIT_JOURNAL_PATCH,
        AuditJournal,
        audit_event,
        cause,
        require_payload,
        send_notice,
        write_audit,
    )

T = TypeVar("T")

SA_SERVICE = SearchAttributeKey.for_keyword("WardenService")
SA_VERSION = SearchAttributeKey.for_keyword("WardenVersion")
SA_STAGE = SearchAttributeKey.for_keyword("WardenStage")
SA_STATE = SearchAttributeKey.for_keyword("WardenState")

TIMELINE_LIMIT = 200
MAX_ROLLBACK_BACKOFF = timedelta(minutes=5)


class ReleaseStop(Exception):
    """Ends the release without promotion; `outcome` is how it ends before any rollback."""

    def __init__(
        self, outcome: ReleaseState, reason: str, trigger: str, stage: str | None = None
    ) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.trigger = trigger
        self.stage = stage


@workflow.defn
class ReleaseWorkflow:
    @workflow.init
    def __init__(self, input: ReleaseInput) -> None:
        plan = input.plan
        self._input = input
        self._plan = plan
        self._release_id = plan.release_id
        self._paused = False
        self._pause_reason: str | None = None
        self._abort: AbortRequest | None = None
        self._snapshots: dict[str, FlagSnapshot] = {}
        self._changed: list[tuple[str, str]] = []  # (environment, flag) in the order first touched
        self._published: tuple[str, str] | None = None
        self._refusals_seen: set[str] = set()
        self._governance: GovernanceStatus | None = None
        # Releases started before the journal wrote each audit event on its own (and replay so).
        self._journal = AuditJournal() if workflow.patched(AUDIT_JOURNAL_PATCH) else None
        self._status = ReleaseStatus(
            release_id=self._release_id,
            service=plan.service,
            version=plan.version,
            owner=plan.owner,
            started_by=input.started_by,
            trace_id=input.trace_id,
            started_at=workflow.now(),
            state=ReleaseState.RUNNING,
            stages=[
                StageStatus(
                    name=stage.name,
                    environment=stage.env,
                    base_url=stage.base_url,
                    checklist=[
                        ChecklistItem(key=key, title=CHECKLIST_TITLES[key]) for key in ChecklistKey
                    ],
                )
                for stage in plan.stages
            ],
        )

    # -- the pipeline ----------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ReleaseInput) -> ReleaseResult:
        try:
            result = await self._pipeline(input)
        except (Exception, asyncio.CancelledError):
            # However the release ends, its audit trail is complete first.
            await asyncio.shield(asyncio.ensure_future(self._flush_audit()))
            raise
        await self._flush_audit()
        return result

    async def _pipeline(self, input: ReleaseInput) -> ReleaseResult:
        self._publish()
        await self._audit(
            "release.started",
            "started",
            user=input.started_by,
            details={
                "version": self._plan.version,
                "stages": [s.name for s in self._plan.stages],
                "flags": self._plan.flags,
                "devIdentity": input.dev_identity,
            },
        )
        self._event("release.started", f"started by {input.started_by}", user=input.started_by)
        try:
            try:
                await self._prepare_governance()
                await self._prepare_flags()
                for stage in self._plan.stages:
                    await self._run_stage(stage)
            except ReleaseStop as stop:
                result = await self._end(stop)
            else:
                result = await self._finish(ReleaseState.PROMOTED, "promoted through every stage")
        except asyncio.CancelledError:
            # Cancellation must not leave flags half-changed: restore, shielded, then report cancelled.
            cleanup = asyncio.ensure_future(
                self._end(ReleaseStop(ReleaseState.ABORTED, "workflow cancelled", "cancel"))
            )
            await asyncio.shield(cleanup)
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _governance_status(self, stage: str) -> GovernanceStatus:
        return await self._gate_activity(
            "governance",
            stage,
            workflow.execute_activity_method(
                GovernanceActivities.governance_status, **policies.governance_options()
            ),
        )

    async def _prepare_governance(self) -> None:
        """Checklist item 4: audit/permission configuration signed off before production is touched."""
        production = [s for s in self._plan.stages if s.is_production]
        if not production:
            return
        self._set_step("checking the governance file is signed off")
        governance = await self._governance_status(production[0].name)
        self._governance = governance
        if not governance.configured:
            if self._input.options.require_governance:
                raise ReleaseStop(
                    ReleaseState.FAILED,
                    "no governance file is configured, and production releases need a signed-off one "
                    "(set WARDEN_GOVERNANCE_FILE)",
                    "governance",
                    production[0].name,
                )
            return
        if governance.signoff is None:
            reason = (
                f"governance file version {governance.version} is not signed off by committee "
                f"{governance.access_committee}; request it with `warden governance signoff --reason ...`"
            )
            for stage in production:
                self._item(stage.name, ChecklistKey.SIGNOFF, ItemStatus.FAILED, reason)
            raise ReleaseStop(ReleaseState.FAILED, reason, "governance", production[0].name)
        await self._audit(
            "governance.checked",
            "signed-off",
            details={
                "version": governance.version,
                "digest": governance.digest,
                "approvedBy": governance.signoff.approved_by,
            },
        )

    async def _recheck_governance(self, stage: Stage) -> None:
        """The file may have changed while earlier stages ran; a new version needs its own sign-off."""
        if self._governance is None or not self._governance.configured:
            return
        while True:
            current = await self._governance_status(stage.name)
            if current.signoff is not None:
                self._governance = current
                return
            await self._auto_pause(
                f"governance file changed to version {current.version} and is not signed off; "
                "sign it off (`warden governance signoff`) and resume"
            )

    def _governance_evidence(self) -> str:
        governance = self._governance
        if governance is None or not governance.configured or governance.signoff is None:
            return ""
        return f"governance file {governance.version} signed off by {', '.join(governance.signoff.approved_by)}"

    async def _prepare_flags(self) -> None:
        """Checklist items 2 and 5, before the first change: flags exist, state captured and read back."""
        ramped = [s for s in self._plan.stages if s.flags]
        flagless = [s for s in self._plan.stages if not s.flags]
        for stage in flagless:
            self._item(
                stage.name,
                ChecklistKey.FLAGS,
                ItemStatus.NOT_APPLICABLE,
                "the stage changes no flags",
            )
            self._item(
                stage.name,
                ChecklistKey.ROLLBACK_PLAN,
                ItemStatus.NOT_APPLICABLE,
                "nothing to roll back",
            )
        if not self._plan.flags or not ramped:
            return
        environments = list(dict.fromkeys(s.env for s in ramped))
        flags_input = FlagsInput(
            release_id=self._release_id,
            environments=environments,
            flags=self._plan.flags,
            trace_id=self._input.trace_id,
        )
        self._set_step("checking the plan's flags exist in the flag backend")
        presence: list[FlagPresence] = await self._gate_activity(
            "flags",
            None,
            workflow.execute_activity_method(
                FlagActivities.check_flags, flags_input, **policies.flag_read_options()
            ),
        )
        missing = [f"{flag} ({p.environment})" for p in presence for flag in p.missing]
        await self._audit(
            "flags.checked",
            "failed" if missing else "passed",
            details={"missing": missing, "environments": environments},
        )
        if missing:
            for stage in ramped:
                self._item(
                    stage.name,
                    ChecklistKey.FLAGS,
                    ItemStatus.FAILED,
                    "missing: " + ", ".join(missing),
                )
            raise ReleaseStop(
                ReleaseState.FAILED,
                "flags missing in the flag backend: " + ", ".join(missing),
                "flags",
                ramped[0].name,
            )
        for stage in ramped:
            self._item(
                stage.name,
                ChecklistKey.FLAGS,
                ItemStatus.PASSED,
                f"{len(self._plan.flags)} flag(s) present in {stage.env}",
            )
        self._set_step("capturing the flags' current state (rollback plan)")
        snapshots: list[FlagSnapshot] = await self._gate_activity(
            "flags",
            None,
            workflow.execute_activity_method(
                FlagActivities.snapshot_flags, flags_input, **policies.flag_read_options()
            ),
        )
        self._snapshots = {s.environment: s for s in snapshots}
        self._status.snapshots = snapshots
        for stage in ramped:
            snap = self._snapshots.get(stage.env)
            if snap is None:
                self._item(
                    stage.name, ChecklistKey.ROLLBACK_PLAN, ItemStatus.FAILED, "no snapshot taken"
                )
                raise ReleaseStop(
                    ReleaseState.FAILED, f"no flag snapshot for {stage.env}", "flags", stage.name
                )
            self._item(
                stage.name,
                ChecklistKey.ROLLBACK_PLAN,
                ItemStatus.PASSED,
                f"snapshot of {len(snap.flags)} flag(s) in {stage.env} read back (sha256 {snap.digest[:12]})",
            )
        await self._audit(
            "flags.snapshot",
            "captured",
            details={s.environment: s.digest for s in snapshots},
        )
        self._event("flags.snapshot", "flag state captured in " + ", ".join(environments))

    async def _run_stage(self, stage: Stage) -> None:
        status = self._stage(stage.name)
        await self._checkpoint(f"starting stage {stage.name}")
        if stage.is_production:
            await self._recheck_governance(stage)
        status.state = StageState.RUNNING
        status.started_at = workflow.now()
        self._status.current_stage = stage.name
        self._publish()
        self._event("stage.started", f"stage {stage.name} started", stage=stage.name)
        await self._audit("stage.started", "started", stage=stage.name)

        if stage.smoke:
            await self._checkpoint(f"smoke checks in {stage.name}")
            report = await self._gate_activity(
                "smoke",
                stage.name,
                workflow.execute_activity_method(
                    SmokeActivities.run_smoke_checks,
                    SmokeInput(
                        release_id=self._release_id,
                        stage=stage.name,
                        base_url=stage.base_url,
                        checks=stage.smoke,
                        trace_id=self._input.trace_id,
                    ),
                    **policies.smoke_options(sum((c.timeout for c in stage.smoke), timedelta())),
                ),
            )
            status.smoke = report
            await self._audit(
                "smoke.result",
                "passed" if report.passed else "failed",
                stage=stage.name,
                details={"summary": report.summary()},
            )
            self._event(
                "smoke.result",
                f"smoke checks {'passed' if report.passed else 'failed'}: {report.summary()}",
                stage=stage.name,
            )
            if not report.passed:
                raise ReleaseStop(
                    ReleaseState.FAILED,
                    f"smoke checks failed in {stage.name}: {report.summary()}",
                    "smoke",
                    stage.name,
                )

        # Switch the release on here (guarded), then prove the stage as it now serves, then sign off.
        await self._ramp_flags(stage, status)
        if stage.bake > timedelta(0):
            await self._guarded_wait(
                stage, stage.bake, f"bake {format_duration(stage.bake)} in {stage.name}"
            )
        await self._contract_gate(stage, status)
        await self._pre_checks(stage, status)
        await self._signoff_gate(stage, status)

        not_passed = [
            i.key.value
            for i in status.checklist
            if i.status not in (ItemStatus.PASSED, ItemStatus.NOT_APPLICABLE)
        ]
        if not_passed:
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"stage {stage.name} checklist incomplete: {', '.join(not_passed)}",
                "checklist",
                stage.name,
            )
        status.state = StageState.PROMOTED
        status.finished_at = workflow.now()
        self._event("stage.promoted", f"stage {stage.name} promoted", stage=stage.name)
        await self._audit("stage.promoted", "promoted", stage=stage.name)

    # -- gates -----------------------------------------------------------------------------

    async def _contract_gate(self, stage: Stage, status: StageStatus) -> None:
        if stage.contract is None:
            self._item(
                stage.name,
                ChecklistKey.CONTRACT,
                ItemStatus.NOT_APPLICABLE,
                "no contract configured",
            )
            return
        await self._checkpoint(f"contract tests in {stage.name}")
        report: ContractReport = await self._gate_activity(
            "contract",
            stage.name,
            self._abortable(
                workflow.execute_activity(
                    "run_contract_tests",
                    ContractInput(
                        release_id=self._release_id,
                        stage=stage.name,
                        base_url=stage.base_url,
                        spec=stage.contract,
                        trace_id=self._input.trace_id,
                    ),
                    result_type=ContractReport,
                    **policies.contract_options(stage.contract.time_budget),
                )
            ),
        )
        status.contract = report
        summary = report.summary()
        self._item(
            stage.name,
            ChecklistKey.CONTRACT,
            ItemStatus.PASSED if report.passed else ItemStatus.FAILED,
            summary,
        )
        await self._audit(
            "contract.result",
            "passed" if report.passed else "failed",
            stage=stage.name,
            details={"summary": summary, "junit": report.junit_report, "json": report.json_report},
        )
        self._event("contract.result", f"contract tests {summary}", stage=stage.name)
        if not report.passed:
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"contract tests failed in {stage.name}: {summary}",
                "contract",
                stage.name,
            )

    async def _pre_checks(self, stage: Stage, status: StageStatus) -> None:
        checks = stage.pre_checks()
        if not checks:
            self._item(
                stage.name, ChecklistKey.THRESHOLDS, ItemStatus.NOT_APPLICABLE, "no metric checks"
            )
            return
        while True:
            await self._checkpoint(f"metric checks in {stage.name}")
            window = max(
                (c.initial_delay + c.interval * ((c.count or 1) - 1) for c in checks),
                default=timedelta(),
            )
            report: ChecksReport = await self._gate_activity(
                "checks",
                stage.name,
                self._abortable(
                    workflow.execute_activity(
                        "run_checks",
                        ChecksInput(
                            release_id=self._release_id,
                            stage=stage.name,
                            base_url=stage.base_url,
                            phase="pre",
                            checks=checks,
                            trace_id=self._input.trace_id,
                        ),
                        result_type=ChecksReport,
                        **policies.checks_options(window),
                    )
                ),
            )
            status.checks = report
            summary = report.summary()
            await self._audit(
                "checks.result",
                report.outcome.value,
                stage=stage.name,
                details={"summary": summary},
            )
            self._event("checks.result", f"metric checks {summary}", stage=stage.name)
            if report.outcome == ChecksOutcome.PASSED:
                self._item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.PASSED, summary)
                return
            if report.outcome == ChecksOutcome.INCONCLUSIVE:
                # Missing evidence is never a pass: wait for a person to resume (re-run) or abort.
                self._item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.PENDING, summary)
                await self._auto_pause(
                    f"metric checks inconclusive in {stage.name}: {summary}; resume to re-run"
                )
                continue
            if report.action == CheckAction.NOTIFY:
                await self._notice_trip(stage, report)
                self._item(
                    stage.name,
                    ChecklistKey.THRESHOLDS,
                    ItemStatus.PASSED,
                    summary + " (notify-only checks tripped)",
                )
                return
            self._item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.FAILED, summary)
            if report.action == CheckAction.PAUSE:
                await self._auto_pause(
                    f"check {report.tripped} failed in {stage.name}; resume to re-run"
                )
                continue
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"metric check {report.tripped} failed in {stage.name}: {summary}",
                "checks",
                stage.name,
            )

    async def _ramp_flags(self, stage: Stage, status: StageStatus) -> None:
        for ramp in stage.flags:
            for percent in ramp.steps_for(stage.name):
                await self._checkpoint(f"{ramp.flag} to {percent}% in {stage.env}")
                if (stage.env, ramp.flag) not in self._changed:
                    # Recorded before the write: a write that fails halfway is still rolled back.
                    self._changed.append((stage.env, ramp.flag))
                    self._status.flags_changed = [f"{f}@{e}" for e, f in self._changed]
                before = self._percent_before(stage.env, ramp.flag)
                await self._flush_audit()  # a flag changes only with the trail up to date
                result = await self._gate_activity(
                    "flags",
                    stage.name,
                    workflow.execute_activity_method(
                        FlagActivities.apply_flag_change,
                        FlagChangeInput(
                            release_id=self._release_id,
                            change=FlagChange(
                                flag=ramp.flag, environment=stage.env, percent=percent
                            ),
                            trace_id=self._input.trace_id,
                        ),
                        **policies.flag_write_options(),
                    ),
                )
                step = FlagStepRecord(
                    flag=ramp.flag, environment=stage.env, percent=percent, at=workflow.now()
                )
                status.flag_steps.append(step)
                await self._audit(
                    "flag.changed",
                    "applied",
                    stage=stage.name,
                    entity=f"flag:{ramp.flag}@{stage.env}",
                    details={
                        "percent": percent,
                        "changed": result.changed,
                        # From the workflow's own record: a retried write finds the new value
                        # already there, so the backend's "before" would be the new percent.
                        "before": before,
                    },
                )
                self._event(
                    "flag.changed", f"{ramp.flag} → {percent}% in {stage.env}", stage=stage.name
                )
                if ramp.bake > timedelta(0):
                    step.state = "baking"
                    try:
                        await self._guarded_wait(
                            stage,
                            ramp.bake,
                            f"{ramp.flag} at {percent}% baking {format_duration(ramp.bake)}",
                        )
                    except ReleaseStop:
                        step.state = "tripped"
                        raise
                step.state = "done"

    def _percent_before(self, environment: str, flag: str) -> int | None:
        """What `flag` served in `environment` before this step: the last step, else the snapshot."""
        for stage_status in reversed(self._status.stages):
            for step in reversed(stage_status.flag_steps):
                if step.environment == environment and step.flag == flag:
                    return step.percent
        snapshot = self._snapshots.get(environment)
        state = next((f for f in snapshot.flags if f.flag == flag), None) if snapshot else None
        return state.percent if state else None

    async def _guarded_wait(self, stage: Stage, duration: timedelta, label: str) -> None:
        """Wait `duration` while the stage's guards watch; one activity per window, not per sample."""
        status = self._stage(stage.name)
        checks = stage.guard_checks()
        self._set_step(label)
        if not checks:
            await self._abortable(workflow.sleep(duration))
            return
        remaining = duration.total_seconds()
        state: list[CheckState] = []
        while remaining > 0:
            report: ChecksReport = await self._gate_activity(
                "guard",
                stage.name,
                self._abortable(
                    workflow.execute_activity(
                        "run_checks",
                        ChecksInput(
                            release_id=self._release_id,
                            stage=stage.name,
                            base_url=stage.base_url,
                            phase="guard",
                            checks=checks,
                            trace_id=self._input.trace_id,
                            window_s=remaining,
                            state=state,
                        ),
                        result_type=ChecksReport,
                        **policies.checks_options(timedelta(seconds=remaining)),
                    )
                ),
            )
            self._record_guard(status, report)
            state = report.checks
            remaining = report.window_left_s
            if report.outcome == ChecksOutcome.PASSED:
                return
            if report.outcome == ChecksOutcome.ALERT_CHANGED:
                await self._alerts_changed(stage, report)
                continue
            summary = report.summary()
            await self._audit(
                "guard.tripped",
                report.outcome.value,
                stage=stage.name,
                details={"check": report.tripped, "summary": summary, "during": label},
            )
            self._event(
                "guard.tripped",
                f"guard {report.tripped or ''} {report.outcome.value} during {label}: {summary}",
                stage=stage.name,
            )
            if report.outcome == ChecksOutcome.INCONCLUSIVE or report.action == CheckAction.PAUSE:
                self._item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.PENDING, summary)
                await self._auto_pause(
                    f"guard {report.outcome.value} during {label}; resume to keep watching"
                )
                state = [s.resumed() for s in state]
                continue
            self._item(stage.name, ChecklistKey.THRESHOLDS, ItemStatus.FAILED, summary)
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"guard {report.tripped} tripped during {label}: {summary}",
                "guard",
                stage.name,
            )

    def _record_guard(self, status: StageStatus, report: ChecksReport) -> None:
        status.guards.append(report)
        del status.guards[
            :-5
        ]  # the latest reports are the evidence; older ones are in the audit trail

    async def _alerts_changed(self, stage: Stage, report: ChecksReport) -> None:
        active = {a.check: a for a in self._status.alerts if a.active and a.stage == stage.name}
        for check in report.checks:
            if check.alerting and check.name not in active:
                alert = Alert(
                    check=check.name,
                    stage=stage.name,
                    since=workflow.now(),
                    message=check.message or f"{check.name} breached",
                )
                self._status.alerts.append(alert)
                await self._notify(
                    f"alert:{check.name}:{len(self._status.alerts)}",
                    f"Alert: {check.name} in {stage.name}",
                    alert.message,
                    severity="warning",
                    audience=self._audience_for(stage, check.name),
                    stage=stage.name,
                )
                await self._audit(
                    "alert.raised", "active", stage=stage.name, details={"check": check.name}
                )
                self._event(
                    "alert.raised", f"alert {check.name}: {alert.message}", stage=stage.name
                )
            elif not check.alerting and check.name in active:
                active[check.name].active = False
                await self._notify(
                    f"alert-cleared:{check.name}:{len(self._status.alerts)}",
                    f"Resolved: {check.name} in {stage.name}",
                    f"{check.name} is back to normal",
                    audience=self._audience_for(stage, check.name),
                    stage=stage.name,
                )
                await self._audit(
                    "alert.cleared", "cleared", stage=stage.name, details={"check": check.name}
                )
                self._event("alert.cleared", f"alert {check.name} cleared", stage=stage.name)

    async def _notice_trip(self, stage: Stage, report: ChecksReport) -> None:
        await self._notify(
            f"check-notify:{stage.name}:{report.tripped}",
            f"Check {report.tripped} tripped in {stage.name}",
            report.summary(),
            severity="warning",
            audience=self._audience_for(stage, report.tripped or ""),
            stage=stage.name,
        )

    def _audience_for(self, stage: Stage, check_name: str) -> list[str]:
        check = next((c for c in stage.checks if c.name == check_name), None)
        return list(check.notify) if check and check.notify else ["operations"]

    async def _signoff_gate(self, stage: Stage, status: StageStatus) -> None:
        spec = stage.signoff
        governance = self._governance_evidence() if stage.is_production else ""
        if spec is None:
            if governance:
                self._item(stage.name, ChecklistKey.SIGNOFF, ItemStatus.PASSED, governance)
            else:
                self._item(
                    stage.name,
                    ChecklistKey.SIGNOFF,
                    ItemStatus.NOT_APPLICABLE,
                    "no sign-off required",
                )
            return
        await self._checkpoint(f"sign-off of {stage.name}")
        if spec.committee:
            members: Members = await self._gate_activity(
                "signoff",
                stage.name,
                workflow.execute_activity_method(
                    GovernanceActivities.resolve_members,
                    MembersInput(
                        committee=spec.committee,
                        approvers=spec.approvers,
                        release_id=self._release_id,
                    ),
                    **policies.governance_options(),
                ),
            )
        else:
            members = Members(members=list(spec.approvers))
        eligible = [m for m in members.members if m != self._input.started_by]
        if len(eligible) < spec.quorum:
            raise ReleaseStop(
                ReleaseState.FAILED,
                f"sign-off of {stage.name} needs {spec.quorum} approval(s) but only {len(eligible)} member(s) "
                f"other than {self._input.started_by} may approve",
                "signoff",
                stage.name,
            )
        deadline_at = workflow.now() + spec.deadline
        gate = SignoffState(
            committee=spec.committee,
            members=members.members,
            member_roles=members.member_roles,
            quorum=spec.quorum,
            required_roles=spec.required_roles,
            deadline_at=deadline_at,
        )
        status.signoff = gate
        status.state = StageState.WAITING_APPROVAL
        self._status.state = ReleaseState.WAITING_APPROVAL
        self._set_step(
            f"waiting for sign-off of {stage.name} ({spec.quorum} of {len(members.members)})"
        )
        self._publish()
        await self._audit(
            "signoff.requested",
            "waiting",
            stage=stage.name,
            details={
                "members": members.members,
                "quorum": spec.quorum,
                "deadline": deadline_at.isoformat(),
            },
        )
        await self._notify(
            f"signoff:{stage.name}",
            f"Sign-off needed: {self._release_id} at {stage.name}",
            f"{spec.quorum} approval(s) needed from {', '.join(members.members)} by {deadline_at.isoformat()}. "
            f"Evidence: `warden release status {self._release_id}`. "
            f"Approve: `warden release approve {self._release_id} --stage {stage.name} --as <you>`",
            audience=["committee"],
            stage=stage.name,
        )
        self._event(
            "signoff.requested",
            f"waiting for {spec.quorum} approval(s) by {deadline_at.isoformat()}",
            stage=stage.name,
        )

        def decided() -> bool:
            return self._signoff_decision(stage) is not None or self._abort is not None

        escalate_at = deadline_at - spec.escalate_before
        if spec.escalate_before > timedelta(0) and escalate_at > workflow.now():
            if not await self._wait_until(decided, escalate_at):
                approvals = len(gate.approvals)
                await self._notify(
                    f"signoff-escalation:{stage.name}",
                    f"Sign-off deadline near: {self._release_id} at {stage.name}",
                    f"{approvals} of {spec.quorum} approval(s) so far; the stage is rejected automatically at "
                    f"{deadline_at.isoformat()}.",
                    severity="warning",
                    audience=["committee", "owner"],
                    stage=stage.name,
                )
                await self._audit("signoff.escalated", "sent", stage=stage.name)
                self._event("signoff.escalated", "escalation notice sent", stage=stage.name)
        await self._wait_until(decided, deadline_at)
        self._check_abort()
        outcome = self._signoff_decision(stage) or "expired"
        gate.outcome = outcome
        status.state = StageState.RUNNING
        self._status.state = ReleaseState.PAUSED if self._paused else ReleaseState.RUNNING
        self._publish()
        names = ", ".join(d.user for d in gate.approvals)
        if outcome == "approved":
            evidence = f"approved by {names} ({len(gate.approvals)}/{spec.quorum})"
            self._item(
                stage.name,
                ChecklistKey.SIGNOFF,
                ItemStatus.PASSED,
                f"{evidence}; {governance}" if governance else evidence,
            )
            await self._audit(
                "signoff.approved",
                "approved",
                stage=stage.name,
                details={"approvers": [d.user for d in gate.approvals]},
            )
            self._event(
                "signoff.approved", f"sign-off of {stage.name} complete: {names}", stage=stage.name
            )
            return
        if outcome == "rejected":
            rejection = gate.rejections[-1]
            reason = f"rejected at {stage.name} by {rejection.user}: {rejection.comment}"
            self._item(stage.name, ChecklistKey.SIGNOFF, ItemStatus.FAILED, reason)
            raise ReleaseStop(ReleaseState.REJECTED, reason, "rejection", stage.name)
        reason = f"sign-off deadline passed at {stage.name} with {len(gate.approvals)} of {spec.quorum} approval(s)"
        self._item(stage.name, ChecklistKey.SIGNOFF, ItemStatus.FAILED, reason)
        await self._audit("signoff.expired", "rejected", stage=stage.name)
        raise ReleaseStop(ReleaseState.REJECTED, reason, "deadline", stage.name)

    def _signoff_decision(self, stage: Stage) -> str | None:
        spec = stage.signoff
        gate = self._stage(stage.name).signoff
        if spec is None or gate is None:
            return None
        if len(gate.rejections) >= spec.rejections_to_fail:
            return "rejected"
        if len(gate.approvals) < spec.quorum:
            return None
        covered = {role for d in gate.approvals for role in gate.member_roles.get(d.user, [])}
        if any(role not in covered for role in spec.required_roles):
            return None
        return "approved"

    # -- ending ----------------------------------------------------------------------------

    async def _end(self, stop: ReleaseStop) -> ReleaseResult:
        """A release that stops restores the flags it changed, then says how it ended."""
        if stop.stage:
            status = self._stage(stop.stage)
            status.state = StageState.FAILED
            status.failure = stop.reason
            status.finished_at = workflow.now()
        for status in self._status.stages:
            if status.state == StageState.PENDING:
                status.state = StageState.SKIPPED
        self._event(f"release.{stop.trigger}", stop.reason, stage=stop.stage)
        outcome = stop.outcome
        if self._changed:
            await self._rollback(stop)
            if outcome in (ReleaseState.FAILED, ReleaseState.REJECTED):
                outcome = ReleaseState.ROLLED_BACK
        return await self._finish(outcome, stop.reason, failed_stage=stop.stage)

    async def _rollback(self, stop: ReleaseStop) -> None:
        scope_envs = list(dict.fromkeys(env for env, _ in self._changed))
        if self._plan.rollback.scope == "stage" and stop.stage:
            stage_env = self._stage(stop.stage).environment
            scope_envs = [e for e in scope_envs if e == stage_env]
        if not scope_envs:
            return
        flags = list(dict.fromkeys(flag for env, flag in self._changed if env in scope_envs))
        record = RollbackRecord(reason=stop.reason, trigger=stop.trigger, started_at=workflow.now())
        self._status.rollback = record
        self._status.state = ReleaseState.ROLLING_BACK
        self._set_step("rolling back flags: " + ", ".join(flags))
        self._publish()
        await self._audit(
            "rollback.started",
            "started",
            details={"reason": stop.reason, "flags": flags, "environments": scope_envs},
        )
        restore = RestoreInput(
            release_id=self._release_id,
            snapshots=[self._snapshots[e] for e in scope_envs if e in self._snapshots],
            flags=flags,
            environments=scope_envs,
            reason=stop.reason,
            trace_id=self._input.trace_id,
        )
        backoff = timedelta(seconds=5)
        alerted = False
        await self._flush_audit()
        while True:
            problem = ""
            try:
                report: RestoreReport = await workflow.execute_activity_method(
                    FlagActivities.restore_flags, restore, **policies.flag_restore_options()
                )
                if report.verified:
                    break
                problem = "read-back differs for " + ", ".join(report.mismatches)
            except ActivityError as exc:
                problem = cause(exc)
            record.state = "retrying"
            self._set_step(f"rollback cannot complete yet ({problem}); retrying")
            if not alerted:
                alerted = True
                await self._notify(
                    "rollback-stuck",
                    f"Rollback of {self._release_id} cannot complete",
                    f"Restoring {', '.join(flags)} failed: {problem}. Release Warden keeps retrying; "
                    "see docs/runbook.md to restore by hand.",
                    severity="critical",
                    audience=["operations", "owner"],
                )
                await self._audit("rollback.retrying", "failed", details={"problem": problem})
                self._event("rollback.retrying", f"rollback failing: {problem}; retrying")
            await workflow.sleep(backoff)
            backoff = min(backoff * 2, MAX_ROLLBACK_BACKOFF)
        record.report = report
        record.state = "completed"
        record.finished_at = workflow.now()
        restored = ", ".join(f"{s.flag}@{s.environment}={s.percent}%" for s in report.restored)
        await self._audit(
            "rollback.completed",
            "restored",
            details={
                "restored": [
                    s.model_dump(mode="json", exclude={"definition"}) for s in report.restored
                ],
                "reason": stop.reason,
            },
        )
        self._event("rollback.completed", f"flags restored and verified: {restored}")
        await self._notify(
            "rollback-completed",
            f"Rolled back: {self._release_id}",
            f"Reason: {stop.reason}. Restored and verified: {restored}.",
            severity="critical",
            audience=["operations", "owner", "committee"],
        )

    async def _finish(
        self, outcome: ReleaseState, reason: str, failed_stage: str | None = None
    ) -> ReleaseResult:
        result = ReleaseResult(
            release_id=self._release_id,
            outcome=outcome,
            reason=reason,
            failed_stage=failed_stage,
            promoted_stages=[s.name for s in self._status.stages if s.state == StageState.PROMOTED],
            rollback=self._status.rollback,
            finished_at=workflow.now(),
        )
        self._status.state = outcome
        self._status.result = result
        self._status.paused = False
        self._set_step(f"{outcome.value}: {reason}")
        self._publish()
        await self._audit(
            "release.finished",
            outcome.value,
            details={"reason": reason, "failedStage": failed_stage},
        )
        self._event("release.finished", f"{outcome.value}: {reason}")
        if outcome != ReleaseState.PROMOTED:
            await self._notify(
                "finished",
                f"Release {self._release_id} ended: {outcome.value}",
                reason,
                severity="warning",
                audience=["owner", "operations"],
            )
        return result

    # -- control: pause, resume, abort -------------------------------------------------------

    async def _checkpoint(self, step: str) -> None:
        """Between steps: honour abort, wait while paused, then say what runs next."""
        self._check_abort()
        if self._paused:
            self._set_step(f"paused before: {step}")
            self._publish()
            await workflow.wait_condition(lambda: not self._paused or self._abort is not None)
            self._check_abort()
        self._set_step(step)

    async def _auto_pause(self, reason: str) -> None:
        self._paused = True
        self._pause_reason = reason
        self._status.paused = True
        self._status.pause_reason = reason
        self._status.state = ReleaseState.PAUSED
        self._publish()
        await self._audit("release.paused", "paused", details={"reason": reason, "automatic": True})
        self._event("release.paused", f"paused automatically: {reason}")
        await self._notify(
            f"paused:{len(self._status.timeline)}",
            f"Release {self._release_id} paused",
            f"{reason}. Resume: `warden release resume {self._release_id} --as <you>`; "
            f"abort: `warden release abort {self._release_id} --as <you> --reason ...`",
            severity="warning",
            audience=["owner", "operations"],
        )
        await self._checkpoint("resuming")

    def _check_abort(self) -> None:
        if self._abort is not None:
            raise ReleaseStop(
                ReleaseState.ABORTED,
                f"aborted by {self._abort.user}: {self._abort.reason}",
                "abort",
                self._status.current_stage if self._current_stage_running() else None,
            )

    def _current_stage_running(self) -> bool:
        name = self._status.current_stage
        return bool(name) and self._stage(name or "").state in (
            StageState.RUNNING,
            StageState.WAITING_APPROVAL,
        )

    async def _abortable(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` unless an abort arrives first; then cancel it and stop the release."""
        task = asyncio.ensure_future(awaitable)
        if self._abort is None:
            aborted = asyncio.ensure_future(
                workflow.wait_condition(lambda: self._abort is not None)
            )
            await workflow.wait([task, aborted], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                aborted.cancel()
                return task.result()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, ActivityError):
            pass
        self._check_abort()
        raise AssertionError("unreachable: abort was requested")

    async def _wait_until(self, condition: Callable[[], bool], at: datetime) -> bool:
        timeout = at - workflow.now()
        if timeout <= timedelta(0):
            return condition()
        try:
            await workflow.wait_condition(condition, timeout=timeout)
        except TimeoutError:
            return condition()
        return True

    async def _gate_activity(self, gate: str, stage: str | None, awaitable: Awaitable[T]) -> T:
        """An activity failure (unreachable spec, bad config, retries spent) fails the stage, readably."""
        try:
            return await awaitable
        except ActivityError as exc:
            raise ReleaseStop(
                ReleaseState.FAILED, f"{gate} gate error: {cause(exc)}", gate, stage
            ) from None

    # -- updates and queries -----------------------------------------------------------------

    @workflow.query
    def status(self) -> ReleaseStatus:
        return self._status

    @workflow.update
    async def approve(self, request: DecisionRequest) -> DecisionOutcome:
        return await self._decide(request, approve=True)

    @approve.validator
    def _validate_approve(self, request: DecisionRequest) -> None:
        self._validate_decision(request, approve=True)

    @workflow.update
    async def reject(self, request: DecisionRequest) -> DecisionOutcome:
        return await self._decide(request, approve=False)

    @reject.validator
    def _validate_reject(self, request: DecisionRequest) -> None:
        self._validate_decision(request, approve=False)

    def _validate_decision(self, request: DecisionRequest, approve: bool) -> None:
        verb = "approve" if approve else "reject"
        require_payload(request, DecisionRequest, verb)
        if self._status.state.ended:
            raise ApplicationError(
                f"release {self._release_id} has already ended ({self._status.state.value})",
                type="ReleaseEnded",
            )
        stage = self._plan.stage(request.stage)
        if stage is None:
            raise ApplicationError(
                f"unknown stage {request.stage!r}; stages: {', '.join(s.name for s in self._plan.stages)}",
                type="UnknownStage",
            )
        gate = self._stage(stage.name).signoff
        if stage.signoff is None:
            raise ApplicationError(
                f"stage {stage.name} has no sign-off", type="NotAwaitingApproval"
            )
        if (
            gate is None
            or gate.outcome is not None
            or self._stage(stage.name).state != StageState.WAITING_APPROVAL
        ):
            raise ApplicationError(
                f"stage {stage.name} is not awaiting approval (it is "
                f"{self._stage(stage.name).state.value})",
                type="NotAwaitingApproval",
            )
        if request.user == self._input.started_by:
            raise ApplicationError(
                f"{request.user} started this release and cannot {verb} it (separation of duties)",
                type="SelfApproval",
            )
        if request.user not in gate.members:
            raise ApplicationError(
                f"{request.user} is not a member of the sign-off for {stage.name} "
                f"(members: {', '.join(gate.members)})",
                type="NotAMember",
            )
        if gate.deadline_at is not None and workflow.now() >= gate.deadline_at:
            raise ApplicationError(
                f"the sign-off deadline of {stage.name} has passed", type="DeadlinePassed"
            )
        if not approve and not request.comment.strip():
            raise ApplicationError("a rejection needs a comment saying why", type="CommentRequired")

    async def _decide(self, request: DecisionRequest, approve: bool) -> DecisionOutcome:
        gate = self._stage(request.stage).signoff
        assert gate is not None  # the validator guarantees it
        previous = next((d for d in gate.decisions if d.user == request.user), None)
        counted = previous is None
        if counted:
            gate.decisions.append(
                Decision(
                    user=request.user,
                    approve=approve,
                    comment=request.comment,
                    at=workflow.now(),
                    roles=gate.member_roles.get(request.user, []),
                    dev_identity=request.dev_identity,
                )
            )
        verb = "approval" if approve else "rejection"
        stage = self._plan.stage(request.stage)
        assert stage is not None
        decided = self._signoff_decision(stage)
        if counted:
            message = (
                f"{verb} by {request.user} recorded ({len(gate.approvals)}/{gate.quorum} approvals)"
            )
        else:
            message = f"{request.user} already decided this stage ({'approved' if previous and previous.approve else 'rejected'}); counted once"
        await self._audit(
            f"signoff.{verb}",
            "accepted" if counted else "duplicate",
            user=request.user,
            stage=request.stage,
            details={
                "comment": request.comment,
                "devIdentity": request.dev_identity,
                "requestId": request.request_id,
            },
            flush=True,
        )
        self._event(
            f"signoff.{verb}",
            message + (f": {request.comment}" if request.comment else ""),
            stage=request.stage,
            user=request.user,
        )
        return DecisionOutcome(
            stage=request.stage,
            user=request.user,
            counted=counted,
            approvals=len(gate.approvals),
            rejections=len(gate.rejections),
            quorum=gate.quorum,
            decided=decided,
            message=message,
        )

    @workflow.signal
    async def record_refusal(self, refusal: RefusalRecord) -> None:
        """Refused requests are audited too; the client that was refused reports it here."""
        if not isinstance(
            refusal, RefusalRecord
        ):  # a signal cannot be refused; drop what is not one
            workflow.logger.warning("record_refusal signal without a RefusalRecord ignored")
            return
        if refusal.refusal_id in self._refusals_seen or len(self._refusals_seen) >= 1000:
            return
        self._refusals_seen.add(refusal.refusal_id)
        await self._audit(
            f"{refusal.request}.refused",
            "refused",
            user=refusal.user,
            stage=refusal.stage,
            details={
                "reason": refusal.reason,
                "devIdentity": refusal.dev_identity,
                "requestId": refusal.request_id,
            },
        )
        self._event(
            f"{refusal.request}.refused",
            f"{refusal.request} by {refusal.user} refused: {refusal.reason}",
            stage=refusal.stage,
            user=refusal.user,
        )

    @workflow.update
    async def pause(self, request: ControlRequest) -> ControlOutcome:
        self._paused = True
        self._pause_reason = f"paused by {request.user}" + (
            f": {request.reason}" if request.reason else ""
        )
        self._status.paused = True
        self._status.pause_reason = self._pause_reason
        if self._status.state == ReleaseState.RUNNING:
            self._status.state = ReleaseState.PAUSED
        self._publish()
        await self._audit(
            "release.paused",
            "paused",
            user=request.user,
            details={"reason": request.reason, "devIdentity": request.dev_identity},
            flush=True,
        )
        self._event("release.paused", self._pause_reason, user=request.user)
        return ControlOutcome(
            state=self._status.state,
            message="paused: the release stops before its next step; guards keep watching",
        )

    @pause.validator
    def _validate_pause(self, request: ControlRequest) -> None:
        require_payload(request, ControlRequest, "pause")
        self._validate_running()
        if self._paused:
            raise ApplicationError(
                f"release {self._release_id} is already paused ({self._pause_reason})",
                type="AlreadyPaused",
            )

    @workflow.update
    async def resume(self, request: ControlRequest) -> ControlOutcome:
        self._paused = False
        self._pause_reason = None
        self._status.paused = False
        self._status.pause_reason = None
        if self._status.state == ReleaseState.PAUSED:
            self._status.state = ReleaseState.RUNNING
        self._publish()
        await self._audit(
            "release.resumed",
            "resumed",
            user=request.user,
            details={"reason": request.reason, "devIdentity": request.dev_identity},
            flush=True,
        )
        self._event("release.resumed", f"resumed by {request.user}", user=request.user)
        return ControlOutcome(state=self._status.state, message="resumed")

    @resume.validator
    def _validate_resume(self, request: ControlRequest) -> None:
        require_payload(request, ControlRequest, "resume")
        self._validate_running()
        if not self._paused:
            raise ApplicationError(f"release {self._release_id} is not paused", type="NotPaused")

    @workflow.update
    async def abort(self, request: AbortRequest) -> ControlOutcome:
        self._abort = request
        await self._audit(
            "release.aborted",
            "requested",
            user=request.user,
            details={"reason": request.reason, "devIdentity": request.dev_identity},
            flush=True,
        )
        self._event(
            "release.abort",
            f"abort requested by {request.user}: {request.reason}",
            user=request.user,
        )
        return ControlOutcome(
            state=self._status.state,
            message="abort accepted: the release stops and restores any flags it changed",
        )

    @abort.validator
    def _validate_abort(self, request: AbortRequest) -> None:
        require_payload(request, AbortRequest, "abort")
        self._validate_running()
        if self._abort is not None:
            raise ApplicationError(
                f"release {self._release_id} is already being aborted by {self._abort.user}",
                type="AlreadyAborting",
            )

    def _validate_running(self) -> None:
        if self._status.state.ended:
            raise ApplicationError(
                f"release {self._release_id} has already ended ({self._status.state.value})",
                type="ReleaseEnded",
            )
        if self._status.state == ReleaseState.ROLLING_BACK:
            raise ApplicationError(
                f"release {self._release_id} is rolling back", type="RollingBack"
            )

    # -- bookkeeping -------------------------------------------------------------------------

    def _stage(self, name: str) -> StageStatus:
        return next(s for s in self._status.stages if s.name == name)

    def _item(self, stage: str, key: ChecklistKey, status: ItemStatus, evidence: str) -> None:
        item = self._stage(stage).item(key)
        item.status = status
        item.evidence = evidence
        item.at = workflow.now()

    def _set_step(self, step: str) -> None:
        self._status.current_step = step
        workflow.set_current_details(
            f"{self._status.state.value} · {self._status.current_stage or '-'} · {step}"
        )

    def _event(
        self, action: str, message: str, stage: str | None = None, user: str | None = None
    ) -> None:
        self._status.timeline.append(
            TimelineEvent(at=workflow.now(), stage=stage, action=action, message=message, user=user)
        )
        del self._status.timeline[:-TIMELINE_LIMIT]

    def _publish(self) -> None:
        """Memo (and search attributes when registered) for `warden release list` and the Temporal UI."""
        current = (self._status.state.value, self._status.current_stage or "")
        if current == self._published:
            return
        self._published = current
        workflow.upsert_memo({"state": current[0], "stage": current[1]})
        if self._input.options.search_attributes:
            workflow.upsert_search_attributes(
                [
                    SA_SERVICE.value_set(self._plan.service),
                    SA_VERSION.value_set(self._plan.version),
                    SA_STAGE.value_set(current[1]),
                    SA_STATE.value_set(current[0]),
                ]
            )

    async def _audit(
        self,
        action: str,
        result: str,
        *,
        user: str | None = None,
        stage: str | None = None,
        entity: str | None = None,
        details: dict[str, Any] | None = None,
        flush: bool = False,
    ) -> None:
        """Record an audit event: into the journal (written shortly, in order; at once with
        `flush`, as update handlers do before they answer), or for a release started before
        the journal, written by its own local activity before this returns."""
        event = audit_event(
            action,
            result,
            user=user or "warden",
            entity=entity
            or (f"release:{self._release_id}/{stage}" if stage else f"release:{self._release_id}"),
            release_id=self._release_id,
            trace_id=self._input.trace_id,
            details=details,
        )
        if self._journal is None:
            await write_audit([event])
            return
        self._journal.record(event)
        if flush:
            await self._journal.flush()

    async def _flush_audit(self) -> None:
        if self._journal is not None:
            await self._journal.flush()

    async def _notify(
        self,
        key: str,
        title: str,
        text: str,
        *,
        severity: str = "info",
        audience: list[str] | None = None,
        stage: str | None = None,
    ) -> None:
        notice = Notice(
            key=f"{self._release_id}:{workflow.info().run_id}:{key}",
            title=title,
            text=text,
            severity=severity,
            audience=audience or [],
            release_id=self._release_id,
            stage=stage,
            trace_id=self._input.trace_id,
        )
        problem = await send_notice(notice)
        if problem:
            # A notice that cannot be delivered must not block a rollback or a gate; it is recorded.
            self._event("notice.failed", f"notice '{title}' not delivered: {problem}", stage=stage)

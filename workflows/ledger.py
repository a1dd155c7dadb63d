"""The release's ledger: its status, checklist, timeline, audit trail, memo and notices, in one place.

Every part of the release writes what happened through `ReleaseLedger.record`: one call puts the
audit event in the journal, the line in the timeline and, when there is one, the checklist item
with its evidence. The `status` query returns `ledger.status` as it is.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from warden.models.notice import Notice
    from warden.models.release import (
        CHECKLIST_TITLES,
        ChecklistItem,
        ChecklistKey,
        ItemStatus,
        RefusalRecord,
        ReleaseInput,
        ReleaseState,
        ReleaseStatus,
        StageStatus,
        TimelineEvent,
    )
    from workflows.common import (
        AUDIT_JOURNAL_PATCH,
        AuditJournal,
        audit_event,
        first_report,
        send_notice,
        write_audit,
    )

SA_SERVICE = SearchAttributeKey.for_keyword("WardenService")
SA_VERSION = SearchAttributeKey.for_keyword("WardenVersion")
SA_STAGE = SearchAttributeKey.for_keyword("WardenStage")
SA_STATE = SearchAttributeKey.for_keyword("WardenState")

TIMELINE_LIMIT = 200
#: Refusals remembered for de-duplication; beyond this many a release stops recording them.
MAX_REFUSALS = 1000

Item = tuple[ChecklistKey, ItemStatus, str]


class ReleaseLedger:
    def __init__(self, input: ReleaseInput) -> None:
        plan = input.plan
        self.input = input
        self.release_id = plan.release_id
        self._published: tuple[str, str] | None = None
        self._refusals_seen: set[str] = set()
        # Releases started before the journal wrote each audit event on its own (and replay so).
        self._journal = AuditJournal() if workflow.patched(AUDIT_JOURNAL_PATCH) else None
        self.status = ReleaseStatus(
            release_id=self.release_id,
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

    # -- state ---------------------------------------------------------------------------------

    def stage(self, name: str) -> StageStatus:
        return next(s for s in self.status.stages if s.name == name)

    def item(self, stage: str, key: ChecklistKey, status: ItemStatus, evidence: str) -> None:
        item = self.stage(stage).item(key)
        item.status = status
        item.evidence = evidence
        item.at = workflow.now()

    def step(self, step: str) -> None:
        """What the release does now: in `status`, and in the Temporal UI's current details."""
        self.status.current_step = step
        workflow.set_current_details(
            f"{self.status.state.value} · {self.status.current_stage or '-'} · {step}"
        )

    def publish(self) -> None:
        """Memo (and search attributes when registered) for `warden release list` and the Temporal UI."""
        current = (self.status.state.value, self.status.current_stage or "")
        if current == self._published:
            return
        self._published = current
        workflow.upsert_memo({"state": current[0], "stage": current[1]})
        if self.input.options.search_attributes:
            plan = self.input.plan
            workflow.upsert_search_attributes(
                [
                    SA_SERVICE.value_set(plan.service),
                    SA_VERSION.value_set(plan.version),
                    SA_STAGE.value_set(current[1]),
                    SA_STATE.value_set(current[0]),
                ]
            )

    # -- what happened ---------------------------------------------------------------------------

    async def record(
        self,
        action: str,
        result: str,
        message: str | None = None,
        *,
        stage: str | None = None,
        user: str | None = None,
        entity: str | None = None,
        details: dict[str, Any] | None = None,
        item: Item | None = None,
        timeline_action: str | None = None,
        flush: bool = False,
    ) -> None:
        """One thing that happened: its checklist item (if any), (with a `message`) its line in
        the timeline, under `timeline_action` when that differs, and its audit event."""
        if item is not None and stage is not None:
            self.item(stage, *item)
        # The timeline first: an update handler waits for the audit write, and meanwhile the
        # release may move on; its line must not land after what that move adds.
        if message is not None:
            self.note(timeline_action or action, message, stage=stage, user=user)
        await self.audit(
            action, result, user=user, stage=stage, entity=entity, details=details, flush=flush
        )

    def note(
        self, action: str, message: str, stage: str | None = None, user: str | None = None
    ) -> None:
        """A line in the timeline only (the audit trail has its own event, or needs none)."""
        self.status.timeline.append(
            TimelineEvent(at=workflow.now(), stage=stage, action=action, message=message, user=user)
        )
        del self.status.timeline[:-TIMELINE_LIMIT]

    async def audit(
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
        """An audit event: into the journal (written shortly, in order; at once with `flush`, as
        update handlers do before they answer), or for a release started before the journal,
        written by its own local activity before this returns."""
        event = audit_event(
            action,
            result,
            user=user or "warden",
            entity=entity
            or (f"release:{self.release_id}/{stage}" if stage else f"release:{self.release_id}"),
            release_id=self.release_id,
            trace_id=self.input.trace_id,
            details=details,
        )
        if self._journal is None:
            await write_audit([event])
            return
        self._journal.record(event)
        if flush:
            await self._journal.flush()

    async def flush(self) -> None:
        """Wait until every audit event recorded so far is written."""
        if self._journal is not None:
            await self._journal.flush()

    async def record_refusal(self, refusal: RefusalRecord) -> None:
        """A request the release refused, as the refused client reports it (once per refusal id)."""
        if not first_report(self._refusals_seen, refusal.refusal_id, MAX_REFUSALS):
            return
        await self.record(
            f"{refusal.request}.refused",
            "refused",
            f"{refusal.request} by {refusal.user} refused: {refusal.reason}",
            user=refusal.user,
            stage=refusal.stage,
            details={
                "reason": refusal.reason,
                "devIdentity": refusal.dev_identity,
                "requestId": refusal.request_id,
            },
        )

    async def notify(
        self,
        key: str,
        title: str,
        text: str,
        *,
        severity: str = "info",
        audience: list[str] | None = None,
        stage: str | None = None,
        link: str | None = None,
    ) -> None:
        """A notice to the webhooks, keyed so that a retry or a replay never sends it twice."""
        notice = Notice(
            key=f"{self.release_id}:{workflow.info().run_id}:{key}",
            title=title,
            text=text,
            severity=severity,
            audience=audience or [],
            release_id=self.release_id,
            stage=stage,
            trace_id=self.input.trace_id,
            link=link,
        )
        problem = await send_notice(notice)
        if problem:
            # A notice that cannot be delivered must not block a rollback or a gate; it is recorded.
            self.note("notice.failed", f"notice '{title}' not delivered: {problem}", stage=stage)

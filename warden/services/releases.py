"""Releases from the outside: start, look, decide, control. The CLI, the API and the dashboard use it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from warden import tracing
from warden.errors import Conflict, NotFound, Refused, WardenError
from warden.flagstore import FlagBackendError, FlagConfigError, local_backend
from warden.models.common import short_repr
from warden.models.flags import live_flag_warning
from warden.models.plan import ReleasePlan
from warden.models.release import (
    AbortRequest,
    ControlOutcome,
    ControlRequest,
    DecisionOutcome,
    DecisionRequest,
    RefusalRecord,
    ReleaseInput,
    ReleaseOptions,
    ReleaseResult,
    ReleaseStarted,
    ReleaseStatus,
    ReleaseSummary,
)
from warden.runtime.background import NoWorker
from warden.runtime.client import TemporalLink
from warden.services.trust import trust_policy, with_proof
from warden.settings import Settings
from workflows.release import ReleaseWorkflow
from workflows.trust import AUDITED

QUERY_TIMEOUT = timedelta(seconds=15)
#: Trace ids travel in X-Trace-Id headers and audit rows: printable ASCII, no spaces (as the API's).
TRACE_ID_PATTERN = re.compile(r"[!-~]{1,200}")


#: A service or state name in a visibility filter: nothing that could end the quoted value.
_FILTER_VALUE = re.compile(r"[A-Za-z0-9._\-]{1,100}")


class ReleasePage(BaseModel):
    releases: list[ReleaseSummary]
    next_page_token: bytes | None = None


async def _summary(execution: WorkflowExecution) -> ReleaseSummary:
    memo = await execution.memo()
    status = execution.status.name.lower() if execution.status else ""
    return ReleaseSummary(
        release_id=execution.id,
        service=str(memo.get("service", "")),
        version=str(memo.get("version", "")),
        owner=str(memo.get("owner", "")),
        started_by=str(memo.get("started_by", "")),
        state=str(memo.get("state", status)),
        stage=str(memo.get("stage", "")),
        workflow_status=status,
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )


class UnknownRelease(NotFound):
    pass


class ReleaseExists(Conflict):
    pass


class RequestRefused(Refused):
    """The release refused an approval, rejection, pause, resume or abort; `code` says why."""


def refusal_of(exc: WorkflowUpdateFailedError) -> tuple[str, str]:
    """A refused update's reason and code (the validator's ApplicationError type)."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return cause.message, cause.type or "Refused"
    return str(cause), "Refused"


async def report_refusal(
    exc: WorkflowUpdateFailedError,
    handle: WorkflowHandle[Any, Any],
    signal: Any,
    request: str,
    user: str,
    reason: str,
    *,
    dev_identity: bool,
    stage: str | None = None,
    request_id: str | None = None,
) -> None:
    """Tell the workflow that refused a request about it, for its audit trail: a validator
    cannot write, so the refused client reports it through the workflow's `signal`. A workflow
    that refused it in its handler (`decision-proof`) has audited it already, and says so."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and AUDITED in cause.details:
        return
    refusal = RefusalRecord(
        refusal_id=uuid.uuid4().hex,
        request=request,
        user=user,
        reason=reason if len(reason) <= 2000 else reason[:1997] + "...",
        stage=stage,
        dev_identity=dev_identity,
        request_id=request_id,
    )
    try:
        await handle.signal(signal, refusal)
    except RPCError:
        pass  # the workflow ended meanwhile; nothing left to protect


def new_trace_id() -> str:
    return uuid.uuid4().hex


SA_TRACE_ID = SearchAttributeKey.for_keyword(tracing.SEARCH_ATTRIBUTE)


def trace_search_attributes(settings: Settings, trace_id: str | None) -> TypedSearchAttributes:
    """`WardenTraceId` (the OpenTelemetry trace id) for a workflow started with a trace id,
    where the Warden search attributes are in use (`WARDEN_SEARCH_ATTRIBUTES`)."""
    if not trace_id or not settings.use_search_attributes:
        return TypedSearchAttributes.empty
    return TypedSearchAttributes(
        [SearchAttributePair(SA_TRACE_ID, tracing.otel_trace_id(trace_id))]
    )


def check_trace_id(trace_id: str | None) -> str | None:
    if trace_id is not None and not TRACE_ID_PATTERN.fullmatch(trace_id):
        raise WardenError(
            f"trace id {short_repr(trace_id)} is not usable: 1-200 printable ASCII characters, no spaces"
        )
    return trace_id


class ReleaseService:
    def __init__(self, temporal: TemporalLink) -> None:
        self.temporal = temporal
        self.settings = temporal.settings

    # -- starting --------------------------------------------------------------------------

    async def start(
        self,
        plan: ReleasePlan,
        started_by: str,
        *,
        trace_id: str | None = None,
        request_id: str | None = None,
        dev_identity: bool = False,
        rerun: bool = False,
    ) -> ReleaseStarted:
        release_id = plan.release_id
        check_trace_id(trace_id)
        release_input = ReleaseInput(
            plan=plan,
            started_by=started_by,
            trace_id=trace_id or new_trace_id(),
            request_id=request_id or uuid.uuid4().hex,
            dev_identity=dev_identity,
            options=ReleaseOptions(
                search_attributes=self.settings.use_search_attributes,
                flag_backend=self.settings.flag_backend,
                require_governance=self.settings.env == "production",
                trust=trust_policy(self.settings),
            ),
        )
        # Read before the release starts: its first steps would otherwise be read as live.
        warnings = await self.live_flag_warnings(plan)
        client = await self.temporal.client()
        try:
            with tracing.in_trace(release_input.trace_id):
                handle = await self._start_workflow(client, release_input, rerun=rerun)
        except WorkflowAlreadyStartedError:
            raise await self._exists_error(release_id) from None
        return ReleaseStarted(
            warnings=warnings,
            release_id=handle.id,
            run_id=handle.first_execution_run_id or handle.result_run_id or "",
            trace_id=release_input.trace_id,
            started_by=started_by,
            dev_identity=dev_identity,
        )

    async def live_flag_warnings(self, plan: ReleasePlan) -> list[str]:
        """One line per flag and environment whose ramp has steps the flag already serves (the
        release will skip them). Read here when this machine reaches the flag backend; the
        workflow decides again with what it captured, so nothing is lost when it cannot."""
        backend = local_backend(self.settings)
        if backend is None:
            return []
        warnings = []
        try:
            for stage in plan.stages:
                ramps = {r.flag: r for r in stage.flags if not r.start_over}
                if not ramps:
                    continue
                for state in await backend.read(stage.env, list(ramps)):
                    served = state.percent if state.exists else None
                    skipped = ramps[state.flag].skips(stage.name, served)
                    if skipped and served is not None:
                        warnings.append(live_flag_warning(state.flag, stage.env, served, skipped))
        except (FlagBackendError, FlagConfigError, OSError):
            return warnings
        finally:
            await backend.aclose()
        return list(dict.fromkeys(warnings))

    async def _start_workflow(
        self, client: Client, release_input: ReleaseInput, *, rerun: bool
    ) -> WorkflowHandle[ReleaseWorkflow, ReleaseResult]:
        plan = release_input.plan
        return await client.start_workflow(
            ReleaseWorkflow.run,
            release_input,
            id=plan.release_id,
            task_queue=self.settings.task_queue,
            id_reuse_policy=(
                WorkflowIDReusePolicy.ALLOW_DUPLICATE
                if rerun
                else WorkflowIDReusePolicy.REJECT_DUPLICATE
            ),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            memo={
                "service": plan.service,
                "version": plan.version,
                "owner": plan.owner,
                "started_by": release_input.started_by,
                "trace_id": release_input.trace_id,
                "flags": plan.flags,
                "environments": plan.environments(),
            },
            static_summary=f"{plan.service} {plan.version}: {' → '.join(s.name for s in plan.stages)}",
            search_attributes=trace_search_attributes(self.settings, release_input.trace_id),
        )

    async def _exists_error(self, release_id: str) -> ReleaseExists:
        client = await self.temporal.client()
        description = await client.get_workflow_handle(release_id).describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            return ReleaseExists(
                f"release {release_id} is already running; watch it with `warden release watch {release_id}`"
            )
        memo = await description.memo()
        state = memo.get(
            "state", description.status.name.lower() if description.status else "ended"
        )
        return ReleaseExists(
            f"release {release_id} already ran ({state}); bump the version or start it again with --rerun"
        )

    # -- looking ---------------------------------------------------------------------------

    async def handle(self, release_id: str) -> WorkflowHandle[ReleaseWorkflow, ReleaseResult]:
        client = await self.temporal.client()
        return client.get_workflow_handle_for(ReleaseWorkflow.run, release_id)

    async def status(self, release_id: str) -> ReleaseStatus:
        handle = await self.handle(release_id)
        await self._describe(release_id)
        try:
            return await handle.query(ReleaseWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as exc:
            if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE):
                raise self._no_worker(release_id) from None
            raise
        except WorkflowQueryFailedError as exc:
            raise WardenError(f"status of {release_id} could not be read: {exc.message}") from None

    def _no_worker(self, release_id: str) -> NoWorker:
        return NoWorker(
            f"no worker answered for {release_id} on task queue {self.settings.task_queue}; "
            "start one with `warden worker`"
        )

    async def _describe(self, release_id: str) -> Any:
        unknown = UnknownRelease(
            f"unknown release {short_repr(release_id, 120)} (see `warden release list`)"
        )
        if not release_id.strip():
            raise unknown  # Temporal refuses an empty workflow id outright
        try:
            return await (await self.handle(release_id)).describe()
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise unknown from None
            raise

    async def result(self, release_id: str) -> ReleaseResult:
        await self._describe(release_id)
        try:
            return await (await self.handle(release_id)).result()
        except WorkflowFailureError as exc:
            raise WardenError(f"release {release_id} did not complete: {exc.cause}") from None

    async def list(self, *, limit: int = 50, query: str | None = None) -> list[ReleaseSummary]:
        return [row async for row in self.iter_list(limit=limit, query=query)]

    async def iter_list(
        self, *, limit: int = 50, query: str | None = None
    ) -> AsyncIterator[ReleaseSummary]:
        visibility = "WorkflowType = 'ReleaseWorkflow'" + (f" AND {query}" if query else "")
        client = await self.temporal.client()
        async for execution in client.list_workflows(visibility, limit=limit):
            yield await _summary(execution)

    async def page(
        self,
        *,
        service: str | None = None,
        state: str | None = None,
        page_size: int = 25,
        page_token: bytes | None = None,
    ) -> ReleasePage:
        """One page of releases, newest first, from Temporal visibility (the `Warden*` search
        attributes filter by service and state): never a workflow loaded to build it."""
        conditions = ["WorkflowType = 'ReleaseWorkflow'"]
        for attribute, value in (("WardenService", service), ("WardenState", state)):
            if value:
                if not _FILTER_VALUE.fullmatch(value):
                    raise WardenError(
                        f"{attribute.removeprefix('Warden').lower()} {short_repr(value)} is not a "
                        "name (letters, digits, . _ - only)"
                    )
                conditions.append(f"{attribute} = '{value}'")
        if (service or state) and not self.settings.use_search_attributes:
            raise WardenError(
                "filtering needs the Warden* search attributes (WARDEN_SEARCH_ATTRIBUTES=true, "
                "registered on the cluster: docs/temporal-cluster.md)",
                "SearchAttributesOff",
            )
        client = await self.temporal.client()
        executions = client.list_workflows(
            " AND ".join(conditions), page_size=page_size, next_page_token=page_token or None
        )
        await executions.fetch_next_page()
        rows = [await _summary(execution) for execution in executions.current_page or []]
        return ReleasePage(releases=rows, next_page_token=executions.next_page_token or None)

    async def steps(self, release_ids: Sequence[str], timeout_s: float = 1.0) -> dict[str, str]:
        """What each running release does now (its `status` query's current step), asked of
        all at once; a release that does not answer in time is left out."""

        async def one(release_id: str) -> tuple[str, str] | None:
            try:
                handle = await self.handle(release_id)
                status = await asyncio.wait_for(
                    handle.query(ReleaseWorkflow.status, rpc_timeout=QUERY_TIMEOUT), timeout_s
                )
            except (TimeoutError, RPCError, WorkflowQueryFailedError):
                return None
            return release_id, status.current_step

        found = await asyncio.gather(*(one(r) for r in release_ids))
        return dict(row for row in found if row is not None)

    async def plan(self, release_id: str) -> ReleasePlan:
        """The plan a release was started with (its first history event): the thresholds and
        flag steps a page shows beside what the release measured."""
        await self._describe(release_id)
        client = await self.temporal.client()
        handle = client.get_workflow_handle(release_id)
        async for event in handle.fetch_history_events(page_size=1):
            attributes = event.workflow_execution_started_event_attributes
            [started] = await client.data_converter.decode(
                list(attributes.input.payloads), [ReleaseInput]
            )
            return started.plan  # type: ignore[no-any-return]
        raise UnknownRelease(f"release {release_id} has no history")

    def contract_report_path(self, status: ReleaseStatus, stage: str, kind: str) -> Path:
        """The JSON or JUnit report of a stage's contract run, only from the artifacts dir."""
        found = next((s for s in status.stages if s.name == stage), None)
        report = found.contract if found else None
        name = None
        if report is not None:
            name = report.json_report if kind == "json" else report.junit_report
        if not name:
            raise NotFound(f"stage {short_repr(stage)} of {status.release_id} has no {kind} report")
        path = Path(name).expanduser().resolve()
        root = self.settings.artifacts_path.resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise NotFound(f"the {kind} report of {status.release_id}/{stage} is not on this host")
        return path

    # -- deciding and controlling ----------------------------------------------------------

    async def approve(self, release_id: str, request: DecisionRequest) -> DecisionOutcome:
        outcome: DecisionOutcome = await self._update(
            release_id, "approve", request, ReleaseWorkflow.approve, request.stage
        )
        return outcome

    async def reject(self, release_id: str, request: DecisionRequest) -> DecisionOutcome:
        outcome: DecisionOutcome = await self._update(
            release_id, "reject", request, ReleaseWorkflow.reject, request.stage
        )
        return outcome

    async def pause(self, release_id: str, request: ControlRequest) -> ControlOutcome:
        outcome: ControlOutcome = await self._update(
            release_id, "pause", request, ReleaseWorkflow.pause
        )
        return outcome

    async def resume(self, release_id: str, request: ControlRequest) -> ControlOutcome:
        outcome: ControlOutcome = await self._update(
            release_id, "resume", request, ReleaseWorkflow.resume
        )
        return outcome

    async def abort(self, release_id: str, request: AbortRequest) -> ControlOutcome:
        outcome: ControlOutcome = await self._update(
            release_id, "abort", request, ReleaseWorkflow.abort
        )
        return outcome

    async def _update(
        self, release_id: str, name: str, request: Any, method: Any, stage: str | None = None
    ) -> Any:
        description = await self._describe(release_id)
        handle = await self.handle(release_id)
        request = with_proof(self.settings, request, action=name, target=release_id, stage=stage)
        if description.status != WorkflowExecutionStatus.RUNNING:
            memo = await description.memo()
            raise RequestRefused(
                f"release {release_id} has already ended ({memo.get('state', 'closed')})",
                "ReleaseEnded",
            )
        try:
            return await handle.execute_update(method, request, rpc_timeout=QUERY_TIMEOUT)
        except WorkflowUpdateFailedError as exc:
            message, code = refusal_of(exc)
            await report_refusal(
                exc,
                handle,
                ReleaseWorkflow.record_refusal,
                name,
                request.user,
                message,
                dev_identity=request.dev_identity,
                stage=stage,
                request_id=request.request_id,
            )
            raise RequestRefused(message, code) from None
        except RPCError as exc:
            if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE):
                raise self._no_worker(release_id) from None
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise RequestRefused(
                    f"release {release_id} has already ended", "ReleaseEnded"
                ) from None
            raise

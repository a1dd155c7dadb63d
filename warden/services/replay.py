"""Replay: a release's (or a trace's) histories against the current workflow code, and the
chain of events around them — Temporal events, audit rows, flag changes, alerts, notices.

`warden replay` and `GET /traces/{trace_id}` use it. The workflows of one trace are found
through their `WardenTraceId` search attribute; each history is replayed with the worker's
workflow classes in the worker's sandbox (`temporalio.worker.Replayer`). A history that no
longer replays names the first event that diverged, found by replaying ever longer prefixes
of it (the SDK's error names the command, not the event).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from warden import tracing
from warden.errors import NotFound, WardenError
from warden.models.audit import AuditEvent, AuditQuery
from warden.models.common import short_repr
from warden.models.replay import ChainLine, ReplayedWorkflow, ReplayReport, Source
from warden.runtime.client import TemporalLink
from warden.runtime.worker import workflow_runner
from warden.services.audit import AuditService
from warden.services.releases import check_trace_id
from warden.settings import Settings

#: `--since`: a number and a unit (`30m`, `12h`, `7d`, `2w`).
SINCE = re.compile(r"(\d{1,6})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: The index of the workflow ids committed histories were recorded under (a proof names its
#: workflow), beside them: `tests/replay/histories/workflow_ids.json`.
WORKFLOW_IDS = "workflow_ids.json"
#: At most this many workflows for one trace, or for `--all`.
MAX_WORKFLOWS = 10_000
SUMMARY_CHARS = 160

_COMMAND_EVENTS = frozenset(
    {
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
        EventType.EVENT_TYPE_TIMER_STARTED,
        EventType.EVENT_TYPE_TIMER_CANCELED,
        EventType.EVENT_TYPE_MARKER_RECORDED,
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
        EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED,
    }
)


class UnknownRelease(NotFound):
    pass


class UnknownTrace(NotFound):
    pass


def parse_since(text: str) -> timedelta:
    """`--since 7d`: minutes, hours, days or weeks; WardenError (exit 2) otherwise."""
    match = SINCE.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise WardenError(
            f"--since {short_repr(text)} is not a time span: a number and m, h, d or w (e.g. 7d)"
        )
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise WardenError(f"--since {short_repr(text)} is too long ago") from None


def event_type_name(event_type: int) -> str:
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]


# -- replaying -------------------------------------------------------------------------------


def _prefix(history: WorkflowHistory, end: int) -> WorkflowHistory:
    return WorkflowHistory(history.workflow_id, list(history.events[:end]))


@dataclass
class _Divergence:
    event_id: int | None
    event_type: str | None
    problem: str


def _problem(failure: Exception) -> str:
    """The SDK's nondeterminism error, without the wrapping around its message."""
    text = str(failure)
    match = re.search(r'message: "(.*?)", source', text)
    return " ".join((match[1] if match else text).split())[:500]


_QUIET_RUNTIME: Runtime | None = None


def quiet_runtime() -> Runtime:
    """A runtime whose core does not log: a failing replay is reported once, by us, not as
    warnings from the SDK's core on stdout (where `--json` and `--csv` go)."""
    global _QUIET_RUNTIME
    if _QUIET_RUNTIME is None:
        _QUIET_RUNTIME = Runtime(telemetry=TelemetryConfig(logging=None))
    return _QUIET_RUNTIME


class HistoryReplayer:
    """The worker's workflows in the worker's sandbox, replaying one history at a time."""

    def __init__(self, settings: Settings, workflows: Sequence[type] | None = None) -> None:
        if workflows is None:
            from workflows import WORKFLOWS

            workflows = WORKFLOWS
        self._replayer = Replayer(
            workflows=list(workflows),
            data_converter=pydantic_data_converter,
            workflow_runner=workflow_runner(settings),
            runtime=quiet_runtime(),
            # Not the SDK's default, which hashes the bytecode of every loaded module (a
            # quarter of a second, every run): a replay is never versioned by it.
            build_id="warden-replay",
        )

    async def _failure(self, history: WorkflowHistory) -> Exception | None:
        result = await self._replayer.replay_workflow(history, raise_on_replay_failure=False)
        return result.replay_failure

    async def replay(self, history: WorkflowHistory) -> ReplayedWorkflow:
        events = history.events
        first = events[0].workflow_execution_started_event_attributes if events else None
        outcome = ReplayedWorkflow(
            workflow_id=history.workflow_id,
            run_id=first.original_execution_run_id if first else "",
            workflow_type=first.workflow_type.name if first else "?",
            events=len(events),
            deterministic=True,
        )
        failure = await self._failure(history)
        if failure is None:
            return outcome
        divergence = await self._diverged(history, failure)
        return outcome.model_copy(
            update={
                "deterministic": False,
                "event_id": divergence.event_id,
                "event_type": divergence.event_type,
                "problem": divergence.problem,
            }
        )

    async def _diverged(self, history: WorkflowHistory, failure: Exception) -> _Divergence:
        """The first event the current code does not do again.

        Prefixes of a history that end at a workflow task's start are what a worker sees; the
        shortest one that fails to replay fails on the commands of the task before its last,
        which the events after that task's completion record."""
        events = history.events
        starts = [
            i + 1
            for i, e in enumerate(events)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        ]
        problem = _problem(failure)
        low, high = 0, len(starts)  # starts[high] fails (or the whole history does)
        while low < high:
            middle = (low + high) // 2
            if await self._failure(_prefix(history, starts[middle])) is None:
                low = middle + 1
            else:
                high = middle
        # The task whose commands diverged completed after starts[high - 1].
        begin = starts[high - 1] if high > 0 else 0
        end = starts[high] if high < len(starts) else len(events)
        candidates = [e for e in events[begin:end] if e.event_type in _COMMAND_EVENTS]
        named = re.search(r"'([A-Za-z_][\w.]*)'", problem)
        if named:
            for candidate in candidates:
                if _activity_type(candidate) == named[1]:
                    return _Divergence(
                        candidate.event_id, event_type_name(candidate.event_type), problem
                    )
        chosen = candidates[0] if candidates else (events[end - 1] if events else None)
        if chosen is None:
            return _Divergence(None, None, problem)
        return _Divergence(chosen.event_id, event_type_name(chosen.event_type), problem)


def _activity_type(event: HistoryEvent) -> str | None:
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return event.activity_task_scheduled_event_attributes.activity_type.name
    return None


# -- the chain -------------------------------------------------------------------------------


def _values(payloads: Iterable[Any]) -> list[Any]:
    """Payloads as plain JSON values (the pydantic converter writes JSON)."""
    out: list[Any] = []
    for payload in payloads:
        try:
            out.append(json.loads(payload.data) if payload.data else None)
        except (ValueError, UnicodeDecodeError):
            out.append(None)
    return out


def _brief(value: Any) -> str:
    """A result in one short line."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        keys = (
            "message",
            "verdict",
            "outcome",
            "state",
            "passed",
            "changed",
            "percent",
            "title",
            "summary",
        )
        picked = {k: value[k] for k in keys if k in value and not isinstance(value[k], dict)}
        value = picked or value
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=False)
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _at(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


@dataclass
class _WorkflowFacts:
    workflow_id: str
    workflow_type: str
    trace_id: str | None
    request_id: str | None
    started_by: str | None


def workflow_facts(history: WorkflowHistory) -> _WorkflowFacts:
    events = history.events
    started = events[0].workflow_execution_started_event_attributes if events else None
    value = (_values(started.input.payloads) or [None])[0] if started else None
    value = value if isinstance(value, dict) else {}
    trace_id = value.get("trace_id") or None
    return _WorkflowFacts(
        workflow_id=history.workflow_id,
        workflow_type=started.workflow_type.name if started else "?",
        trace_id=trace_id if isinstance(trace_id, str) else None,
        request_id=value.get("request_id") if isinstance(value.get("request_id"), str) else None,
        started_by=next(
            (
                value[k]
                for k in ("started_by", "user", "requested_by")
                if isinstance(value.get(k), str)
            ),
            None,
        ),
    )


def history_lines(history: WorkflowHistory) -> list[ChainLine]:
    """The events of one history that matter: its start, stage transitions, activities with
    their result, updates with who sent them, signals, timers, and how it ended."""
    facts = workflow_facts(history)
    first = (
        history.events[0].workflow_execution_started_event_attributes if history.events else None
    )
    #: Lines without a request of their own name the one that started the workflow (or its run).
    started_by_request = facts.request_id or (
        f"run-{first.original_execution_run_id}" if first else None
    )
    scheduled: dict[int, tuple[str, Any, str | None]] = {}
    timers: dict[int, str] = {}
    updates: dict[str, tuple[str, str | None, str | None]] = {}
    last_stage: tuple[Any, Any] | None = None
    lines: list[ChainLine] = []

    def line(
        event: HistoryEvent,
        kind: str,
        summary: str,
        *,
        user: str | None = None,
        request_id: str | None = None,
        source: Source = "temporal",
    ) -> None:
        lines.append(
            ChainLine(
                at=_at(event),
                source=source,
                workflow_id=facts.workflow_id,
                event_id=event.event_id,
                kind=kind,
                summary=summary,
                user=user,
                request_id=request_id or started_by_request,
                trace_id=facts.trace_id,
            )
        )

    for event in history.events:
        t = event.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            line(
                event,
                "started",
                f"{facts.workflow_type} started",
                user=facts.started_by,
                request_id=facts.request_id,
            )
        elif t == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            memo = event.workflow_properties_modified_event_attributes.upserted_memo.fields
            if "state" in memo or "stage" in memo:
                state = _values([memo["state"]])[0] if "state" in memo else None
                stage = _values([memo["stage"]])[0] if "stage" in memo else None
                if (state, stage) != last_stage:
                    last_stage = (state, stage)
                    where = f" at {stage}" if stage else ""
                    line(event, "stage", f"{state or '?'}{where}")
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            args = _values(attrs.input.payloads)
            scheduled[event.event_id] = (
                attrs.activity_type.name,
                args[0] if args else None,
                attrs.activity_id,
            )
        elif t in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        ):
            if t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done = event.activity_task_completed_event_attributes
                scheduled_id = done.scheduled_event_id
                result = _values(done.result.payloads)
                outcome = f"completed: {_brief(result[0] if result else None)}"
            elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                failed = event.activity_task_failed_event_attributes
                scheduled_id = failed.scheduled_event_id
                outcome = f"failed: {_brief(failed.failure.message)}"
            else:
                scheduled_id = event.activity_task_timed_out_event_attributes.scheduled_event_id
                outcome = "timed out"
            name, arg, activity_id = scheduled.get(scheduled_id, ("?", None, None))
            source: Source = "temporal"
            if name == "send_notice":
                source = "notice"
                title = arg.get("title") if isinstance(arg, dict) else None
                outcome = f"{title or 'notice'} ({outcome})"
            line(event, name, outcome, source=source, request_id=f"activity-{activity_id}")
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request
            args = _values(accepted.input.args.payloads)
            arg = args[0] if args and isinstance(args[0], dict) else {}
            user = arg.get("user") if isinstance(arg.get("user"), str) else None
            request_id = arg.get("request_id") if isinstance(arg.get("request_id"), str) else None
            name = accepted.input.name
            updates[accepted.meta.update_id] = (name, user, request_id)
            what = " ".join(
                f"{k} {arg[k]}" for k in ("stage", "reason", "comment") if arg.get(k)
            ).strip()
            line(
                event,
                f"update {name}",
                f"{name} by {user or '?'}" + (f": {what}" if what else ""),
                user=user,
                request_id=request_id or accepted.meta.update_id,
            )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            completed = event.workflow_execution_update_completed_event_attributes
            name, user, request_id = updates.get(completed.meta.update_id, ("?", None, None))
            if completed.outcome.HasField("failure"):
                outcome = f"refused: {_brief(completed.outcome.failure.message)}"
            else:
                result = _values(completed.outcome.success.payloads)
                outcome = _brief(result[0] if result else None)
            line(
                event,
                f"update {name}",
                outcome,
                user=user,
                request_id=request_id or completed.meta.update_id,
            )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signaled = event.workflow_execution_signaled_event_attributes
            args = _values(signaled.input.payloads)
            arg = args[0] if args and isinstance(args[0], dict) else {}
            user = arg.get("user") if isinstance(arg.get("user"), str) else None
            line(
                event,
                f"signal {signaled.signal_name}",
                _brief(arg.get("reason") or arg or None),
                user=user,
                request_id=arg.get("request_id")
                if isinstance(arg.get("request_id"), str)
                else None,
            )
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            started_timer = event.timer_started_event_attributes
            seconds = started_timer.start_to_fire_timeout.ToTimedelta().total_seconds()
            timers[event.event_id] = started_timer.timer_id
            line(event, "timer", f"timer {started_timer.timer_id} started ({seconds:g}s)")
        elif t == EventType.EVENT_TYPE_TIMER_FIRED:
            line(event, "timer", f"timer {event.timer_fired_event_attributes.timer_id} fired")
        elif t == EventType.EVENT_TYPE_TIMER_CANCELED:
            line(event, "timer", f"timer {event.timer_canceled_event_attributes.timer_id} canceled")
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            result = _values(event.workflow_execution_completed_event_attributes.result.payloads)
            line(event, "completed", _brief(result[0] if result else None))
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            message = event.workflow_execution_failed_event_attributes.failure.message
            line(event, "failed", _brief(message))
        elif t in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        ):
            line(event, event_type_name(t).removeprefix("WORKFLOW_EXECUTION_").lower(), "")
    return lines


def _audit_source(action: str) -> Source:
    if action.startswith(("flag.", "killswitch.")) or action in (
        "rollback.completed",
        "flags.snapshot",
    ):
        return "flag"
    if action.startswith(("alert.", "guard.")):
        return "alert"
    if action.startswith("notice."):
        return "notice"
    return "audit"


def audit_line(event: AuditEvent) -> ChainLine:
    details = event.details or {}
    source = _audit_source(event.action)
    summary = f"{event.result} {event.entity}"
    if source == "flag" and "percent" in details:
        before = details.get("before")
        before_text = f"{before}%" if before is not None else "?"
        summary = f"{event.entity.removeprefix('flag:')}: {before_text} → {details['percent']}% ({event.result})"
    else:
        extra = " ".join(
            f"{k}={_brief(details[k])}"
            for k in ("stage", "check", "reason", "message")
            if details.get(k) not in (None, "")
        )
        summary = f"{summary} {extra}".strip()
    request_id = details.get("requestId") or details.get("request_id")
    return ChainLine(
        at=event.timestamp,
        source=source,
        workflow_id=event.releaseId,
        kind=event.action,
        summary=summary,
        user=event.userId,
        request_id=request_id if isinstance(request_id, str) else None,
        trace_id=event.traceId,
    )


def merge(lines: Iterable[ChainLine]) -> list[ChainLine]:
    """In time order; at one instant Temporal's order first, then the audit trail's."""
    indexed = list(enumerate(lines))
    indexed.sort(key=lambda pair: (pair[1].at, pair[1].source != "temporal", pair[0]))
    return [line for _, line in indexed]


# -- the service -----------------------------------------------------------------------------


class ReplayService:
    """Blocking audit reads run in a thread; replays run on the event loop (the SDK's core
    runs the workflow code)."""

    def __init__(
        self,
        temporal: TemporalLink | None,
        audit: AuditService | None,
        settings: Settings,
        *,
        workflows: Sequence[type] | None = None,
    ) -> None:
        self.temporal = temporal
        self.audit = audit
        self.settings = settings
        self._workflows = workflows
        self._replayer: HistoryReplayer | None = None

    @property
    def replayer(self) -> HistoryReplayer:
        if self._replayer is None:
            self._replayer = HistoryReplayer(self.settings, self._workflows)
        return self._replayer

    async def _client(self) -> Client:
        if self.temporal is None:
            raise WardenError("replaying from the cluster needs Temporal")
        return await self.temporal.client()

    async def _fetch(self, workflow_id: str, run_id: str | None = None) -> WorkflowHistory:
        client = await self._client()
        return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()

    async def release(self, release_id: str, *, replay: bool = True) -> ReplayReport:
        """The release's history replayed, and its chain with its audit rows."""
        try:
            history = await self._fetch(release_id)
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise UnknownRelease(
                    f"unknown release {short_repr(release_id)} (see `warden release list`)"
                ) from None
            raise
        facts = workflow_facts(history)
        audit = await self._audit([AuditQuery(releaseId=release_id, limit=100_000)])
        return await self._report(
            [history],
            audit,
            replay=replay,
            release_id=release_id,
            trace_id=facts.trace_id,
        )

    async def trace(self, trace_id: str, *, replay: bool = True) -> ReplayReport:
        """Every workflow carrying this trace id (`WardenTraceId`), replayed, with the audit
        rows of the trace and of those workflows."""
        check_trace_id(trace_id)
        otel = tracing.otel_trace_id(trace_id)
        client = await self._client()
        found: list[tuple[datetime, str, str]] = []
        query = f'{tracing.SEARCH_ATTRIBUTE} = "{otel}"'
        try:
            async for execution in client.list_workflows(query, limit=MAX_WORKFLOWS):
                found.append(
                    (
                        execution.start_time or datetime.min.replace(tzinfo=UTC),
                        execution.id,
                        execution.run_id,
                    )
                )
        except RPCError as exc:
            if exc.status == RPCStatusCode.INVALID_ARGUMENT:
                raise WardenError(
                    f"the cluster cannot search by {tracing.SEARCH_ATTRIBUTE}: {exc.message} "
                    "(register it, see docs/temporal-cluster.md)"
                ) from None
            raise
        if not found:
            hint = (
                ""
                if self.settings.use_search_attributes
                else f" (workflows carry {tracing.SEARCH_ATTRIBUTE} only with "
                "WARDEN_SEARCH_ATTRIBUTES=true)"
            )
            raise UnknownTrace(
                f"no release, kill switch or access change carries trace id "
                f"{short_repr(trace_id)}{hint}"
            )
        found.sort()
        histories = await asyncio.gather(*(self._fetch(wid, run) for _, wid, run in found))
        originals = {trace_id} | {t for t in (workflow_facts(h).trace_id for h in histories) if t}
        queries = [AuditQuery(traceId=t, limit=100_000) for t in sorted(originals)]
        queries += [AuditQuery(releaseId=h.workflow_id, limit=100_000) for h in histories]
        audit = await self._audit(queries)
        return await self._report(
            list(histories), audit, replay=replay, trace_id=trace_id, otel=otel
        )

    async def recent(self, since: timedelta) -> ReplayReport:
        """Every workflow of the namespace started in the last `since`, replayed."""
        client = await self._client()
        start = (datetime.now(UTC) - since).strftime("%Y-%m-%dT%H:%M:%SZ")
        found: list[tuple[str, str]] = []
        async for execution in client.list_workflows(f'StartTime > "{start}"', limit=MAX_WORKFLOWS):
            found.append((execution.id, execution.run_id))
        histories = [await self._fetch(wid, run) for wid, run in found]
        outcomes = [await self.replayer.replay(h) for h in histories]
        return ReplayReport(
            deterministic=all(o.deterministic for o in outcomes), workflows=outcomes
        )

    async def files(self, path: Path) -> ReplayReport:
        """Committed histories (a file, or a directory of `*.json`), replayed; the workflow ids
        they were recorded under come from `workflow_ids.json` beside them."""
        histories = load_histories(path)
        outcomes = [await self.replayer.replay(h) for h in histories]
        return ReplayReport(
            deterministic=all(o.deterministic for o in outcomes), workflows=outcomes
        )

    async def _audit(self, queries: list[AuditQuery]) -> list[AuditEvent]:
        if self.audit is None:
            return []
        audit = self.audit

        def read() -> list[AuditEvent]:
            seen: dict[str, AuditEvent] = {}
            for query in queries:
                for event in audit.query(query):
                    seen.setdefault(event.eventId, event)
            return list(seen.values())

        return await asyncio.to_thread(read)

    async def _report(
        self,
        histories: list[WorkflowHistory],
        audit: list[AuditEvent],
        *,
        replay: bool,
        release_id: str | None = None,
        trace_id: str | None = None,
        otel: str | None = None,
    ) -> ReplayReport:
        outcomes = [await self.replayer.replay(h) for h in histories] if replay else []
        lines = [line for h in histories for line in history_lines(h)]
        started = {line.workflow_id: line.request_id for line in lines if line.kind == "started"}
        for event in audit:
            line = audit_line(event)
            if line.request_id is None and line.workflow_id in started:
                line = line.model_copy(update={"request_id": started[line.workflow_id]})
            lines.append(line)
        return ReplayReport(
            release_id=release_id,
            trace_id=trace_id,
            otel_trace_id=otel or (tracing.otel_trace_id(trace_id) if trace_id else None),
            deterministic=all(o.deterministic for o in outcomes),
            workflows=outcomes,
            chain=merge(lines),
        )


def load_histories(path: Path) -> list[WorkflowHistory]:
    """`path` (a history file, or a directory of them) as histories; WardenError (exit 2) when
    it is not there or a file is not a history."""
    if not path.exists():
        raise WardenError(f"--history {path}: no such file or directory")
    directory = path if path.is_dir() else path.parent
    files = (
        sorted(p for p in path.glob("*.json") if p.name != WORKFLOW_IDS)
        if path.is_dir()
        else [path]
    )
    if not files:
        raise WardenError(f"--history {path}: no *.json histories there")
    index_file = directory / WORKFLOW_IDS
    ids: dict[str, str] = {}
    if index_file.is_file():
        try:
            loaded = json.loads(index_file.read_text())
        except ValueError:
            raise WardenError(f"{index_file} is not JSON") from None
        ids = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    out = []
    for file in files:
        try:
            out.append(WorkflowHistory.from_json(ids.get(file.stem, file.stem), file.read_text()))
        except Exception as exc:  # not JSON, or not a history: one line naming the file
            raise WardenError(f"{file} is not a workflow history: {_brief(str(exc))}") from None
    return out

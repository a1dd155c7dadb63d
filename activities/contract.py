"""Contract gate: schemathesis runs a stage's OpenAPI contract against the stage (checklist item 1).

Schemathesis runs in-process, through its engine API (`schemathesis.engine.from_schema(schema)
.execute()`), rather than as an `st run` subprocess: the engine's event stream gives every finished
operation as a structured event (heartbeat per operation, failures with their check, status and
curl command, no report files to parse), its stop event ends a cancelled run within the request in
flight, and the worker pays the import cost once instead of on every run. The engine itself is
synchronous, so it runs on its own thread while the activity's coroutine heartbeats, watches the
time budget and listens for cancellation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import schemathesis
from requests import PreparedRequest
from requests.auth import AuthBase, HTTPBasicAuth
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import StopReason, events
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contract_report import (
    RunCollector,
    capped,
    report_paths,
    write_reports,
)
from activities.contract_spec import (
    ResolvedHeaders,
    effective_base_url,
    fetch_document,
    gate_config_error,
    invalid_spec,
    resolve_headers,
    resolve_location,
    same_origin,
    select_operations,
    validate_document,
)
from warden.models.contract import ContractInput, ContractReport
from warden.settings import Settings

log = logging.getLogger("warden.contract")

#: Heartbeat at least this often while one operation takes long (the workflow allows 60 s).
HEARTBEAT_EVERY_S = 10.0
#: After a stop (cancel or budget), how long the request in flight may take to finish.
STOP_GRACE_S = 5.0

RUN_DURATION_METRIC = "warden_contract_run_duration_seconds"
RUNS_METRIC = "warden_contract_runs_total"
FAILURES_METRIC = "warden_contract_failures_total"
TEST_CASES_METRIC = "warden_contract_test_cases_total"

REQUEST_ID_HEADER = "X-Request-Id"

# Schemas of the runs in progress, by id: the request hook tags only their calls.
_ACTIVE_RUNS: set[int] = set()


class _FreshRequestId(AuthBase):
    """Gives a prepared request its own X-Request-Id, after any auth the case already carries."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        if isinstance(self.inner, tuple):
            request = HTTPBasicAuth(*self.inner)(request)
        elif callable(self.inner):
            request = self.inner(request)
        request.headers[REQUEST_ID_HEADER] = uuid.uuid4().hex
        return request


@schemathesis.hook("before_call")
def tag_contract_request(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Each test case of a contract run goes out with its own X-Request-Id.

    The id is set on the prepared request (through requests' auth hook), not on the case: editing
    a case's headers would make schemathesis revalidate it and could turn a deliberately invalid
    case valid. Requests schemathesis sends outside test cases (capability probes, auth probes)
    carry the run's own X-Request-Id from the configured headers.
    """
    if id(case.operation.schema) not in _ACTIVE_RUNS:
        return
    kwargs["auth"] = _FreshRequestId(kwargs.get("auth") or getattr(case, "_auth", None))


class ContractActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.artifacts_dir = settings.artifacts_path
        self.http_timeout_s = settings.http_timeout_s
        _keep_hypothesis_files_in(settings.resolved_state_dir / "hypothesis")

    @activity.defn(name="run_contract_tests")
    async def run_contract_tests(self, input: ContractInput) -> ContractReport:
        started = time.monotonic()
        spec = input.spec
        result = "error"
        counts = [0, 0]  # distinct failures, test cases: for the worker metrics
        try:
            report = await self._run(input, started, counts)
            result = "passed" if report.passed else ("timed_out" if report.timed_out else "failed")
            return report
        except asyncio.CancelledError:
            result = "cancelled"
            raise
        finally:
            _record_metrics(result, time.monotonic() - started, counts)
            log.info(
                "contract run %s/%s (%s) ended %s in %.1fs",
                input.release_id,
                input.stage,
                spec.openapi,
                result,
                time.monotonic() - started,
                extra={
                    "release_id": input.release_id,
                    "stage": input.stage,
                    "trace_id": input.trace_id,
                },
            )

    async def _run(self, input: ContractInput, started: float, counts: list[int]) -> ContractReport:
        spec = input.spec
        headers = resolve_headers(spec.headers)
        location = resolve_location(spec.openapi, input.base_url)
        document = await fetch_document(
            location,
            # The plan's headers (credentials) go to the stage only, not to a document hosted elsewhere.
            headers=headers.values if same_origin(location.location, input.base_url) else {},
            trace_id=input.trace_id,
            timeout=self.http_timeout_s,
        )
        seed = spec.seed if spec.seed is not None else random.SystemRandom().randrange(2**63)
        schema = build_schema(document, input, headers, seed, source=location.location)
        labels = [op.ok().label for op in schema.get_all_operations() if _is_ok(op)]
        bodies = (
            report_paths(self.artifacts_dir, input.release_id, input.stage)[0].parent / "bodies"
        )
        collector = RunCollector(labels, headers.redact, bodies_dir=bodies)
        deadline = started + spec.time_budget.total_seconds()

        _ACTIVE_RUNS.add(id(schema))
        try:
            timed_out = await self._drive(schema, collector, deadline, spec.request_timeout)
        finally:
            _ACTIVE_RUNS.discard(id(schema))

        collector.finish()
        total, tested, errored, skipped = collector.counts()
        errors = [*collector.run_errors]
        errors += [f"{r.label}: {e}" for r in collector.operations.values() for e in r.errors]
        if collector.stop_reason == StopReason.SERVER_UNAVAILABLE:
            errors.insert(0, f"the service at {input.base_url} stopped answering during the run")
        locked_out = collector.locked_out()
        if locked_out:
            # Conformant 401s prove nothing about the API behind them; schemathesis only warns.
            errors.append(
                f"{len(locked_out)} operation(s) answered only 401/403 and never 2xx, e.g. {locked_out[0]}: "
                "the run did not get past authentication (set the contract's headers, e.g. "
                "Authorization from_env)"
            )
        if not timed_out and not collector.finished:
            errors.append("the schemathesis run ended without finishing")
        if tested == 0 and not errors and not timed_out:
            errors.append("no operation could be tested")
        passed = not collector.failures and not errors and not timed_out
        json_path, junit_path = report_paths(self.artifacts_dir, input.release_id, input.stage)
        report = ContractReport(
            passed=passed,
            spec=location.location,
            base_url=schema.config.base_url or input.base_url,
            seed=seed,
            operations_total=total,
            operations_tested=tested,
            operations_errored=errored,
            operations_skipped=skipped,
            test_cases=collector.test_cases,
            failures=collector.failures,
            failures_total=len(collector.failures),
            errors=errors,
            duration_s=round(time.monotonic() - started, 3),
            timed_out=timed_out,
            json_report=str(json_path),
            junit_report=str(junit_path),
        )
        counts[:] = [len(collector.failures), collector.test_cases]
        await asyncio.to_thread(
            write_reports,
            report,
            collector,
            json_path=json_path,
            junit_path=junit_path,
            context={
                "release_id": input.release_id,
                "stage": input.stage,
                "trace_id": input.trace_id,
                "checks": input.spec.checks,
                "exclude_checks": input.spec.exclude_checks,
                "max_examples": input.spec.max_examples,
            },
        )
        return capped(report)

    async def _drive(
        self, schema: Any, collector: RunCollector, deadline: float, request_timeout: timedelta
    ) -> bool:
        """Run the engine on its thread; heartbeat per operation; stop at the deadline or on cancel.

        Returns whether the time budget ran out.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[events.EngineEvent | BaseException | None] = asyncio.Queue()
        stream = schemathesis.engine.from_schema(schema).execute()
        done = loop.create_future()

        def forward(item: events.EngineEvent | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (worker shutting down); nothing left to tell
                pass

        def pump() -> None:
            try:
                for event in stream:
                    forward(event)
            except BaseException as exc:  # reported to the coroutine, which decides
                forward(exc)
            finally:
                forward(None)
                loop.call_soon_threadsafe(_resolve, done)

        thread = threading.Thread(target=pump, name="contract-run", daemon=True)
        thread.start()
        timed_out = False
        grace = request_timeout.total_seconds() + STOP_GRACE_S
        try:
            while True:
                wait = (
                    HEARTBEAT_EVERY_S
                    if timed_out
                    else min(HEARTBEAT_EVERY_S, deadline - time.monotonic())
                )
                item = await _next_item(queue, max(wait, 0.05))
                if item is _NOTHING_YET:
                    if not timed_out and time.monotonic() >= deadline:
                        timed_out = True
                        stream.stop()
                    activity.heartbeat(collector.progress())
                    continue
                if item is None:
                    break
                if isinstance(item, BaseException):
                    collector.run_errors.append(
                        f"schemathesis crashed: {type(item).__name__}: {item}"
                    )
                    continue
                assert isinstance(item, events.EngineEvent)
                collector.add(item)
                if isinstance(item, events.ScenarioFinished):
                    activity.heartbeat(collector.progress())
                    if not timed_out and time.monotonic() >= deadline:
                        timed_out = True
                        stream.stop()
        except asyncio.CancelledError:
            # Stop sending requests before reporting the cancellation: the engine checks its stop
            # event before every request, so only the request in flight still completes.
            stream.stop()
            finished, _ = await asyncio.wait({done}, timeout=grace)
            if not finished:
                log.warning("contract run still winding down %.0fs after cancellation", grace)
            raise
        if timed_out:
            collector.stop_reason = StopReason.MAX_TIME
        await asyncio.wait({done}, timeout=grace)
        return timed_out


_NOTHING_YET = object()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _next_item(queue: asyncio.Queue[Any], timeout: float) -> Any:
    """The next queued item, or `_NOTHING_YET` after `timeout` seconds.

    Not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that lands just as the
    item arrives, and a cancelled contract run must stop.
    """
    getter = asyncio.ensure_future(queue.get())
    try:
        finished, _ = await asyncio.wait({getter}, timeout=timeout)
    finally:
        if not getter.done():
            getter.cancel()
    return getter.result() if finished else _NOTHING_YET


def build_schema(
    document: dict[str, Any],
    input: ContractInput,
    headers: ResolvedHeaders,
    seed: int,
    *,
    source: str,
) -> Any:
    """A validated schemathesis schema configured from the stage's `contract` section."""
    from warden.http import USER_AGENT

    spec = input.spec
    config = SchemathesisConfig(seed=seed)
    # Reproducible from the seed alone: no cross-run failure cache, no example database.
    config.cache.enabled = False
    sanitization = config.output.sanitization
    sanitization.keys_to_sanitize = tuple(
        dict.fromkeys([*sanitization.keys_to_sanitize, *(n.lower() for n in headers.secret_names)])
    )
    try:
        schema = schemathesis.openapi.from_dict(document, config=config)
    except Exception as exc:  # LoaderError: unsupported or missing version
        raise invalid_spec(f"OpenAPI document {source}: {_first_line(exc)}") from None
    validate_document(schema, source)
    included, excluded = list(spec.checks), list(spec.exclude_checks)
    try:
        schema.config.update(
            base_url=effective_base_url(input.base_url, schema.base_path),
            headers={
                "User-Agent": USER_AGENT,
                # Requests outside test cases carry the run's id; test cases get their own (see the hook).
                REQUEST_ID_HEADER: uuid.uuid4().hex,
                "X-Trace-Id": input.trace_id,
                **headers.values,
            },
            request_timeout=spec.request_timeout.total_seconds(),
        )
        schema.config.generation.update(max_examples=spec.max_examples, database="none")
        schema.config.checks.update(
            included_check_names=included, excluded_check_names=excluded or None
        )
    except ApplicationError:
        raise
    except Exception as exc:
        raise gate_config_error(
            f"contract settings rejected by schemathesis: {_first_line(exc)}"
        ) from None
    return select_operations(schema, spec.include, spec.exclude)


def _is_ok(result: Any) -> bool:
    try:
        result.ok()
    except Exception:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _record_metrics(result: str, duration_s: float, counts: list[int]) -> None:
    """Worker metrics (Prometheus through the SDK runtime): run duration and outcome, failures found."""
    try:
        meter = activity.metric_meter()
    except Exception:  # outside an activity context
        return
    attributes = {"result": result}
    meter.create_histogram_float(
        RUN_DURATION_METRIC,
        "Wall time of a contract-test run, from spec fetch to reports written.",
        "s",
    ).record(duration_s, attributes)
    meter.create_counter(RUNS_METRIC, "Contract-test runs, by result.").add(1, attributes)
    failures, test_cases = counts
    if failures:
        meter.create_counter(FAILURES_METRIC, "Distinct contract failures found.").add(failures)
    if test_cases:
        meter.create_counter(TEST_CASES_METRIC, "Test cases sent by contract runs.").add(test_cases)


def _keep_hypothesis_files_in(directory: Path) -> None:
    """Hypothesis caches generation data on disk; keep it in the state dir, not the worker's cwd."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(directory)

"""Contract gate: schemathesis runs a stage's OpenAPI contract against the stage (checklist item 1).

Schemathesis runs in-process, through its engine API (`schemathesis.engine.from_schema(schema)
.execute()`), rather than as an `st run` subprocess: the engine's event stream gives every finished
operation as a structured event (heartbeat per operation, failures with their check, status and
curl command, no report files to parse), its stop event ends a cancelled run within the request in
flight, and the worker pays the import cost once instead of on every run. The engine itself is
synchronous, so it runs on its own thread while the activity's coroutine heartbeats, watches the
time budget and listens for cancellation.

The events also go through `st run`'s own execution context (see `contract_report`), so the gate
names failures and decides its verdict exactly as `st run` would with the same settings. A
document or plan that cannot be used is a failed report with a `reason`, never an exception:
the reports are written for every outcome.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shlex
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
    SpecLocation,
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
from warden import tracing
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
            if report.passed:
                result = "passed"
            elif report.error_type is not None:
                result = "error"
            else:
                result = "timed_out" if report.timed_out else "failed"
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
        """Every outcome ends in a report written to disk: a document that cannot be fetched or
        used and a plan that cannot run here are reports with a `reason`, not exceptions, so the
        stage's evidence always points at `contract.json` and `contract.junit.xml`."""
        spec = input.spec
        json_path, junit_path = report_paths(self.artifacts_dir, input.release_id, input.stage)
        seed = spec.seed if spec.seed is not None else random.SystemRandom().randrange(2**63)
        source = spec.openapi
        headers = ResolvedHeaders()
        try:
            headers = resolve_headers(spec.headers)
            location = resolve_location(spec.openapi, input.base_url)
            source = location.location
            document = await fetch_document(
                location,
                # The plan's headers (credentials) go to the stage only, not to a document hosted elsewhere.
                headers=headers.values if same_origin(location.location, input.base_url) else {},
                trace_id=input.trace_id,
                timeout=self.http_timeout_s,
            )
            schema, labels = build_schema(document, input, headers, seed, location=location)
        except ApplicationError as exc:
            problems = exc.details[0] if exc.details and isinstance(exc.details[0], list) else []
            return await self._refused(
                input,
                started,
                RunCollector(None, headers.redact),
                reason=headers.redact(exc.message),
                error_type=exc.type or "GateError",
                problems=[headers.redact(p) for p in problems],
                source=source,
                seed=seed,
                paths=(json_path, junit_path),
            )
        except Exception as exc:  # a crash still leaves a report, without a traceback in it
            log.exception("contract run %s/%s could not start", input.release_id, input.stage)
            return await self._refused(
                input,
                started,
                RunCollector(None, headers.redact),
                reason=headers.redact(f"the gate could not run: {_describe(exc)}"),
                error_type="GateError",
                problems=[],
                source=source,
                seed=seed,
                paths=(json_path, junit_path),
            )

        collector = RunCollector(
            schema,
            headers.redact,
            location=location.location,
            operation_labels=labels,
            bodies_dir=json_path.parent / "bodies",
        )
        deadline = started + spec.time_budget.total_seconds()
        _ACTIVE_RUNS.add(id(schema))
        try:
            timed_out = await self._drive(schema, collector, deadline, spec.request_timeout)
        finally:
            _ACTIVE_RUNS.discard(id(schema))

        collector.finish()
        failures = collector.failures
        total, tested, errored, skipped = collector.counts()
        errors = [*collector.run_errors]
        errors += [f"{r.label}: {e}" for r in collector.operations.values() for e in r.errors]
        if collector.stop_reason == StopReason.SERVER_UNAVAILABLE:
            errors.insert(0, f"the service at {input.base_url} stopped answering during the run")
        locked_out = collector.locked_out()
        if locked_out:
            # Conformant 401s prove nothing about the API behind them: the gate runs with
            # schemathesis' `warnings.fail-on = ["missing_auth"]`, so they fail it.
            errors.append(
                f"{len(locked_out)} operation(s) answered only 401/403 and never 2xx, e.g. {locked_out[0]}: "
                "the run did not get past authentication (set the contract's headers, e.g. "
                "Authorization from_env)"
            )
        if not timed_out and not collector.finished:
            errors.append("the schemathesis run ended without finishing")
        exit_code = collector.exit_code
        if not timed_out and not failures and not errors and exit_code != 0:
            context = collector.context
            why = context.nothing_tested_reason if context is not None else None
            errors.append(why or f"schemathesis ended the run with exit code {exit_code}")
        if tested == 0 and not errors and not timed_out:
            errors.append("no operation could be tested")
        passed = exit_code == 0 and not failures and not errors and not timed_out
        report = ContractReport(
            passed=passed,
            spec=location.location,
            base_url=schema.config.base_url or input.base_url,
            seed=seed,
            operations_total=total,
            operations_tested=tested,
            operations_errored=errored,
            operations_skipped=skipped,
            test_cases=collector.cases_generated(),
            failures=failures,
            failures_total=len(failures),
            errors=errors,
            duration_s=round(time.monotonic() - started, 3),
            timed_out=timed_out,
            json_report=str(json_path),
            junit_report=str(junit_path),
            warnings=collector.warnings(),
        )
        counts[:] = [len(failures), report.test_cases]
        await asyncio.to_thread(
            write_reports,
            report,
            collector,
            json_path=json_path,
            junit_path=junit_path,
            context=_report_context(input),
            reproduce=st_run_equivalent(schema, input, location.location, seed, labels),
        )
        return capped(report)

    async def _refused(
        self,
        input: ContractInput,
        started: float,
        collector: RunCollector,
        *,
        reason: str,
        error_type: str,
        problems: list[str],
        source: str,
        seed: int,
        paths: tuple[Path, Path],
    ) -> ContractReport:
        json_path, junit_path = paths
        report = ContractReport(
            passed=False,
            spec=source,
            base_url=input.base_url,
            seed=seed,
            errors=problems,
            duration_s=round(time.monotonic() - started, 3),
            json_report=str(json_path),
            junit_report=str(junit_path),
            reason=reason,
            error_type=error_type,
        )
        log.warning(
            "contract run %s/%s refused: %s",
            input.release_id,
            input.stage,
            reason,
            extra={"release_id": input.release_id, "stage": input.stage},
        )
        await asyncio.to_thread(
            write_reports,
            report,
            collector,
            json_path=json_path,
            junit_path=junit_path,
            context=_report_context(input),
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


#: Settings the gate gives schemathesis beyond the plan's, as a `schemathesis.toml` would: no
#: failure cache and no example database (a seed reproduces a run), and operations schemathesis
#: saw answer only 401/403 fail the run (they prove nothing about the API behind them).
GATE_SCHEMATHESIS_CONFIG: dict[str, Any] = {
    "cache": {"enabled": False},
    "generation": {"database": "none"},
    "warnings": {"fail-on": ["missing_auth"]},
}
GATE_SCHEMATHESIS_TOML = """[cache]
enabled = false

[generation]
database = "none"

[warnings]
fail-on = ["missing_auth"]
"""


def build_schema(
    document: dict[str, Any],
    input: ContractInput,
    headers: ResolvedHeaders,
    seed: int,
    *,
    location: SpecLocation,
) -> tuple[Any, list[str]]:
    """A schemathesis schema configured from the stage's `contract` section, and the labels of the
    operations it will test.

    It is loaded as `st run` loads it: no whole-document validation (problems in the operations
    under test become errors of those operations; problems elsewhere do not matter), and with the
    document's own location, so relative references resolve and the operation serving the document
    is left out. `strict_document` validates the whole document first and refuses it with every
    problem listed.
    """
    from warden.http import USER_AGENT

    spec = input.spec
    source = location.location
    config = SchemathesisConfig.from_dict({**GATE_SCHEMATHESIS_CONFIG, "seed": seed})
    sanitization = config.output.sanitization
    sanitization.keys_to_sanitize = tuple(
        dict.fromkeys([*sanitization.keys_to_sanitize, *(n.lower() for n in headers.secret_names)])
    )
    if "paths" in document and not isinstance(document["paths"], dict):
        # `st run` stops with an internal error on this one; say what is wrong instead.
        raise invalid_spec(f"OpenAPI document {source}: 'paths' must be an object")
    try:
        schema = schemathesis.openapi.from_dict(document, config=config)
    except Exception as exc:  # LoaderError: unsupported or missing version
        raise invalid_spec(f"OpenAPI document {source}: {_first_line(exc)}") from None
    schema.location = (
        source if location.kind == "url" else Path(source).expanduser().absolute().as_uri()
    )
    if spec.strict_document:
        problems = validate_document(schema, source)
        if problems:
            raise ApplicationError(
                f"OpenAPI document {source} is invalid ({len(problems)} problem(s); "
                f"strict_document is on): {problems[0]}",
                problems,
                type="InvalidSpec",
                non_retryable=True,
            )
    included, excluded = list(spec.checks), list(spec.exclude_checks)
    try:
        schema.config.update(
            base_url=effective_base_url(input.base_url, _base_path(schema, source)),
            headers={
                "User-Agent": USER_AGENT,
                # Requests outside test cases carry the run's id; test cases get their own (see the hook).
                REQUEST_ID_HEADER: uuid.uuid4().hex,
                "X-Trace-Id": input.trace_id,
                "traceparent": tracing.traceparent(input.trace_id),
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
    selected = select_operations(schema, spec.include, spec.exclude)
    return selected, operation_labels(selected)


def _base_path(schema: Any, source: str) -> str:
    try:
        return str(schema.base_path)
    except Exception as exc:  # a `servers` entry schemathesis cannot read
        raise invalid_spec(
            f"OpenAPI document {source}: its servers/basePath cannot be used ({_first_line(exc)})"
        ) from None


def operation_labels(schema: Any) -> list[str]:
    """`METHOD /path` of every operation the schema will test, including ones it cannot build."""
    labels: list[str] = []
    try:
        for result in schema.get_all_operations():
            try:
                labels.append(result.ok().label)
            except Exception:
                error = result.err()
                method, path = getattr(error, "method", None), getattr(error, "path", None)
                if method and path:
                    labels.append(f"{method.upper()} {path}")
    except Exception:  # the document has no usable `paths`; the engine reports it per run
        pass
    return list(dict.fromkeys(labels))


def st_run_equivalent(
    schema: Any, input: ContractInput, location: str, seed: int, labels: list[str]
) -> dict[str, Any]:
    """The plain `st run` that runs the same test: same document, base URL, operations, checks,
    examples, seed and settings (the `config` goes to a `schemathesis.toml` next to it).

    Secret headers appear as the variable or file they come from, never as their values.
    """
    spec = input.spec
    args = ["st", "--config-file", "schemathesis.toml", "run", location]
    args += ["--url", str(schema.config.base_url or input.base_url)]
    args += ["--checks", ",".join(spec.checks)]
    if spec.exclude_checks:
        args += ["--exclude-checks", ",".join(spec.exclude_checks)]
    args += ["--max-examples", str(spec.max_examples), "--seed", str(seed)]
    args += ["--request-timeout", f"{spec.request_timeout.total_seconds():g}"]
    for name, header in spec.headers.items():
        if header.value is not None:
            value = header.prefix + header.value
        elif header.from_env is not None:
            value = f"{header.prefix}${{{header.from_env}}}"
        else:
            value = f"{header.prefix}$(cat {header.from_file})"
        args += ["-H", f"{name}: {value}"]
    if spec.include or spec.exclude:
        # The operations the plan's include/exclude selected, by name: exact, whatever the entry was.
        for label in labels:
            args += ["--include-name", label]
    return {
        "command": " ".join(
            shlex.quote(a) if "${" not in a and "$(" not in a else f'"{a}"' for a in args
        ),
        "argv": args,
        "config": GATE_SCHEMATHESIS_TOML,
    }


def _report_context(input: ContractInput) -> dict[str, Any]:
    return {
        "release_id": input.release_id,
        "stage": input.stage,
        "trace_id": input.trace_id,
        "checks": input.spec.checks,
        "exclude_checks": input.spec.exclude_checks,
        "max_examples": input.spec.max_examples,
        "strict_document": input.spec.strict_document,
    }


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


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

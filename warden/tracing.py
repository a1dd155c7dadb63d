"""OpenTelemetry for Release Warden: one trace id from the start request to the service's logs.

Tracing is configured by the standard `OTEL_*` variables and nothing else:

- it exports spans over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` or
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, or `OTEL_TRACES_EXPORTER` names `otlp`;
- `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns it off whatever else is set;
- `OTEL_SERVICE_NAME` (and `OTEL_RESOURCE_ATTRIBUTES`) name the process in the spans.

With none of them set nothing is installed: no tracer provider, no Temporal interceptor, no
instrumented HTTP client. Every outgoing call still carries `traceparent`, `X-Request-Id` and
`X-Trace-Id` (`warden.http.trace_headers`), so the service's logs name the release's trace.

A Warden trace id is what its start request carried (`X-Trace-Id`, `--trace-id`, or the trace
id of a W3C `traceparent`); one that is not 32 lowercase hex digits is hashed into one
(`otel_trace_id`), and the original stays in the audit rows.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TRACE_HEX = re.compile(r"[0-9a-f]{32}")
TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
#: The keyword search attribute every release, kill switch and access change started with a
#: trace id carries: its OpenTelemetry trace id (`otel_trace_id`).
SEARCH_ATTRIBUTE = "WardenTraceId"
DEFAULT_SERVICE = "release-warden"

#: The Warden trace id of the work running now (a flag activity binds its release's), for the
#: calls that are not handed one (the flag backends).
_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "warden_trace_id", default=None
)
_installed: bool | None = None


def otel_trace_id(trace_id: str) -> str:
    """The 32-hex OpenTelemetry trace id of a Warden trace id: itself when it is one already
    (and not all zeros), else the first 32 hex digits of its sha256."""
    if TRACE_HEX.fullmatch(trace_id) and trace_id != "0" * 32:
        return trace_id
    return hashlib.sha256(trace_id.encode("utf-8")).hexdigest()[:32]


def traceparent_trace_id(header: str | None) -> str | None:
    """The trace id of a W3C `traceparent` header, or None when it is not a usable one."""
    if not header:
        return None
    match = TRACEPARENT.fullmatch(header.strip())
    if match is None or match[1] == "ff" or match[2] == "0" * 32 or match[3] == "0" * 16:
        return None
    return match[2]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def configured() -> bool:
    """Whether the `OTEL_*` variables ask for spans to be exported."""
    if _truthy("OTEL_SDK_DISABLED"):
        return False
    exporters = [
        e.strip().lower() for e in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if e
    ]
    if "none" in exporters:
        return False
    return bool(
        "otlp" in exporters
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


def setup(service_name: str = DEFAULT_SERVICE) -> bool:
    """Install the tracer provider with its OTLP/HTTP exporter, once per process, when
    `configured()`; whether tracing is on. `service_name` is the default for OTEL_SERVICE_NAME."""
    global _installed
    if _installed is not None:
        return _installed
    if not configured():
        _installed = False
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes: dict[str, Any] = {}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service_name
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _installed = True
    return True


def enabled() -> bool:
    """Whether this process traces (after `setup`)."""
    return bool(_installed)


def flush(timeout_ms: int = 5000) -> None:
    """Send the spans still buffered (a CLI command's, before it exits)."""
    if not _installed:
        return
    from opentelemetry import trace

    provider: Any = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(timeout_ms)


def temporal_interceptors() -> list[Any]:
    """The Temporal client's interceptors: the SDK's TracingInterceptor when tracing is on
    (without spans for local activities, the audit writes). A worker built on that client
    traces its workflows and activities with it as well."""
    if not _installed:
        return []
    return [_interceptor_class()()]


_INTERCEPTOR: type[Any] | None = None


def _interceptor_class() -> type[Any]:
    """`TracingInterceptor`, leaving local activities out on both sides (they are a workflow's
    own bookkeeping: an audit write per step would double the spans of a release)."""
    global _INTERCEPTOR
    if _INTERCEPTOR is not None:
        return _INTERCEPTOR
    import temporalio.activity
    import temporalio.worker
    from temporalio.contrib.opentelemetry import (
        TracingInterceptor,
        TracingWorkflowInboundInterceptor,
    )
    from temporalio.contrib.opentelemetry._interceptor import _TracingWorkflowOutboundInterceptor

    class _Outbound(_TracingWorkflowOutboundInterceptor):
        def start_local_activity(
            self, input: temporalio.worker.StartLocalActivityInput
        ) -> temporalio.workflow.ActivityHandle[Any]:
            return self.next.start_local_activity(input)

    class _WorkflowInbound(TracingWorkflowInboundInterceptor):
        def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
            temporalio.worker.WorkflowInboundInterceptor.init(self, _Outbound(outbound, self))

    class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
        def __init__(
            self,
            next: temporalio.worker.ActivityInboundInterceptor,
            traced: temporalio.worker.ActivityInboundInterceptor,
        ) -> None:
            super().__init__(next)
            self._traced = traced

        async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
            if temporalio.activity.info().is_local:
                return await self.next.execute_activity(input)
            return await self._traced.execute_activity(input)

    class WardenTracingInterceptor(TracingInterceptor):
        def intercept_activity(
            self, next: temporalio.worker.ActivityInboundInterceptor
        ) -> temporalio.worker.ActivityInboundInterceptor:
            return _ActivityInbound(next, super().intercept_activity(next))

        def workflow_interceptor_class(
            self, input: temporalio.worker.WorkflowInterceptorClassInput
        ) -> type[TracingWorkflowInboundInterceptor]:
            super().workflow_interceptor_class(input)  # registers the span externs
            return _WorkflowInbound

    _INTERCEPTOR = WardenTracingInterceptor
    return _INTERCEPTOR


def instrument_httpx(client: Any) -> Any:
    """`client` with a client span per request (and its `traceparent`) when tracing is on."""
    if _installed:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client)
    return client


def instrument_fastapi(app: Any) -> None:
    """A server span per API request, in the trace its `traceparent` names, when tracing is on."""
    if _installed:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,metrics")


def _current_span_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, when tracing is on and one is current."""
    if not _installed:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def current_otel_trace_id() -> str | None:
    """The trace id of the current span (an API request's), when tracing is on."""
    current = _current_span_ids()
    return current[0] if current else None


def traceparent(trace_id: str) -> str:
    """A W3C `traceparent` in the trace of `trace_id`: the current span's when it is in that
    trace, else a new parent id in it."""
    wanted = otel_trace_id(trace_id)
    current = _current_span_ids()
    if current is not None and current[0] == wanted:
        return f"00-{wanted}-{current[1]}-01"
    return f"00-{wanted}-{secrets.token_hex(8)}-01"


@contextmanager
def in_trace(trace_id: str | None) -> Iterator[None]:
    """Run the block in the trace of `trace_id` (a workflow started in it carries it on): under
    the current span when that is in this trace already (an API request whose `traceparent`
    gave the trace id), else under a remote parent with that trace id."""
    if not _installed or not trace_id:
        yield
        return
    from opentelemetry import context, trace

    wanted = otel_trace_id(trace_id)
    current = _current_span_ids()
    if current is not None and current[0] == wanted:
        yield
        return
    parent = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=int(wanted, 16),
            span_id=int(secrets.token_hex(8), 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )
    token = context.attach(trace.set_span_in_context(parent))
    try:
        yield
    finally:
        context.detach(token)


def current_trace_id() -> str | None:
    """The Warden trace id bound by `bound`, if any."""
    return _CURRENT.get()


@contextmanager
def bound(trace_id: str | None) -> Iterator[None]:
    """Calls made in the block that are not handed a trace id carry this one."""
    token = _CURRENT.set(trace_id or None)
    try:
        yield
    finally:
        _CURRENT.reset(token)

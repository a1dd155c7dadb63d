"""Test doubles for metric checks: a scripted provider and a real exposition server.

`ScriptedProvider` stands in only for the semantics tests, where the test must choose each
answer; the provider tests use real HTTP servers and a real Prometheus.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import MetricsHandler

from activities.metrics import MeasureContext, MetricError, Reading
from warden.models.metrics import ChecksInput, MetricCheck

Answer = float | None | Exception | Callable[[MeasureContext], Any]


@dataclass
class ScriptedProvider:
    """Answers each check from a script (a list per check name); the last answer repeats.

    An answer is a number, None (no data), an exception (raised: a provider error) or a
    callable of the measurement context returning one of those.
    """

    scripts: dict[str, list[Answer]]
    name: str = "prometheus"
    calls: dict[str, list[MeasureContext]] = field(default_factory=dict)

    async def measure(
        self, query: Any, ctx: MeasureContext, state: dict[str, Any] | None
    ) -> Reading:
        calls = self.calls.setdefault(ctx.check, [])
        calls.append(ctx)
        script = self.scripts[ctx.check]
        answer = script[min(len(calls), len(script)) - 1]
        if callable(answer) and not isinstance(answer, Exception):
            answer = answer(ctx)
        if isinstance(answer, Exception):
            raise answer
        return Reading(None if answer is None else float(answer), "scripted")


def boom(message: str = "connection refused") -> MetricError:
    return MetricError(message)


def check(name: str = "error-rate", **fields: Any) -> MetricCheck:
    data: dict[str, Any] = {
        "name": name,
        "query": {"provider": "prometheus", "query": "x", "address": "http://127.0.0.1:9"},
        "max": 0.05,
        "interval": "10s",
    }
    data.update(fields)
    return MetricCheck.model_validate(data)


def checks_input(
    checks: list[MetricCheck], phase: str = "pre", window_s: float = 0.0, **fields: Any
) -> ChecksInput:
    return ChecksInput(
        release_id="release-support-desk-1.0.0",
        stage="pilot",
        base_url=fields.pop("base_url", "http://127.0.0.1:9"),
        phase=phase,
        checks=checks,
        trace_id="trace-metrics",
        window_s=window_s,
        **fields,
    )


class SupportDeskMetrics:
    """The sample service's metric names in a registry the test controls."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.im_channel_up = Gauge("im_channel_up", "IM channel up", ["channel"], registry=r)
        self.im_latency = Histogram(
            "im_channel_latency_seconds", "IM latency", ["channel"], registry=r
        )
        self.sla_total = Counter("sla_conversations_total", "SLA conversations", registry=r)
        self.sla_overdue = Counter("sla_overdue_total", "SLA overdue", registry=r)
        self.api_requests = Counter(
            "external_api_requests_total", "External API requests", ["api"], registry=r
        )
        self.api_errors = Counter(
            "external_api_errors_total", "External API errors", ["api"], registry=r
        )
        self.audit_last = Gauge(
            "audit_last_event_timestamp_seconds", "Last audit event", registry=r
        )
        for channel in ("wecom", "feishu"):
            self.im_channel_up.labels(channel).set(1)
        self.api_requests.labels("crm").inc(0)
        self.api_errors.labels("crm").inc(0)


class _QuietMetricsHandler(MetricsHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class ExpositionServer:
    """A real HTTP server on 127.0.0.1 serving a prometheus_client registry at /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        handler = type("Handler", (_QuietMetricsHandler,), {"registry": registry})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ExpositionServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serving(metrics: SupportDeskMetrics) -> Iterator[ExpositionServer]:
    with ExpositionServer(metrics.registry) as server:
        yield server


class Traffic:
    """Background traffic on the external API counters: `error_share` of calls fail."""

    def __init__(
        self, metrics: SupportDeskMetrics, per_tick: int = 10, tick_s: float = 0.05
    ) -> None:
        self.metrics = metrics
        self.per_tick = per_tick
        self.tick_s = tick_s
        self.error_share = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.metrics.api_requests.labels("crm").inc(self.per_tick)
            self.metrics.sla_total.inc(1)
            errors = round(self.per_tick * self.error_share)
            if errors:
                self.metrics.api_errors.labels("crm").inc(errors)
            self.metrics.im_latency.labels("wecom").observe(0.12)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

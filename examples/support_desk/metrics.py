"""The service's Prometheus metrics. Release Warden's metric-check templates use these exact names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: IM channels the desk serves; `chat.channel.<name>` flags gate some of them.
CHANNELS = ("feishu", "enterprise-qq", "wecom", "dingtalk", "web-chat", "email")

#: External systems the desk calls.
EXTERNAL_APIS = ("crm", "ai-solutions", "im-gateway")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)


class DeskMetrics:
    """One registry per service instance, so several instances can live in one test process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.channel_up = Gauge(
            "im_channel_up",
            "1 while the IM channel is connected, 0 while it is down.",
            ["channel"],
            registry=r,
        )
        self.channel_latency = Histogram(
            "im_channel_latency_seconds",
            "Delivery latency of messages over an IM channel.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sla_conversations = Counter(
            "sla_conversations", "Conversations closed with an SLA outcome.", registry=r
        )
        self.sla_overdue = Counter(
            "sla_overdue", "Conversations closed after their SLA deadline.", registry=r
        )
        self.sla_compliance = Gauge(
            "sla_compliance_ratio",
            "Share of closed conversations that met their SLA (1 when none closed).",
            registry=r,
        )
        self.pipeline_items = Counter(
            "task_pipeline_items",
            "Requirements and tasks entering a pipeline state.",
            ["kind", "state"],
            registry=r,
        )
        self.external_requests = Counter(
            "external_api_requests", "Calls to external APIs.", ["api"], registry=r
        )
        self.external_errors = Counter(
            "external_api_errors", "Failed calls to external APIs.", ["api"], registry=r
        )
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests served, by route template and status class.",
            ["method", "route", "status_class"],
            registry=r,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time to serve an HTTP request.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.audit_last_event = Gauge(
            "audit_last_event_timestamp_seconds",
            "Unix time of the service's last audit event.",
            registry=r,
        )
        self.audit_events = Counter(
            "audit_events", "Audit events the service recorded.", registry=r
        )

        # Every labelled series exists from the start, so rates and ratios are defined at zero.
        for channel in CHANNELS:
            self.channel_up.labels(channel=channel).set(1)
            self.channel_latency.labels(channel=channel)
        for api in EXTERNAL_APIS:
            self.external_requests.labels(api=api)
            self.external_errors.labels(api=api)
        self.sla_compliance.set(1.0)
        self._closed = 0
        self._overdue = 0

    def record_sla(self, overdue: bool) -> None:
        self._closed += 1
        self._overdue += int(overdue)
        self.sla_conversations.inc()
        if overdue:
            self.sla_overdue.inc()
        self.sla_compliance.set(1.0 - self._overdue / self._closed)

    def record_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(
            method=method, route=route, status_class=f"{status // 100}xx"
        ).inc()
        self.http_duration.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

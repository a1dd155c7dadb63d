"""The API's own Prometheus metrics, in a registry per app (several apps may live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: Request latency buckets, in seconds: API calls answer in milliseconds; Temporal updates take longer.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """Every metric `docs/operational-endpoints.md` documents, with its reference threshold."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "warden_api_requests",
            "HTTP requests answered, by route template, method and status class (2xx, 4xx, 5xx).",
            ["route", "method", "status_class"],
            registry=r,
        )
        self.latency = Histogram(
            "warden_api_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.auth_denied = Counter(
            "warden_api_auth_denied",
            "Requests refused for missing/invalid credentials (unauthenticated) or permissions (forbidden).",
            ["reason"],
            registry=r,
        )
        self.releases_started = Counter(
            "warden_api_releases_started",
            "Releases started through the API (including POST /dev/seed).",
            registry=r,
        )
        self.gate_decisions = Counter(
            "warden_api_gate_decisions",
            "Sign-off decisions sent through the API: decision approve|reject, "
            "result counted|duplicate|refused.",
            ["decision", "result"],
            registry=r,
        )
        self.approvals = Counter(
            "warden_api_approvals",
            "Approvals accepted and counted toward a stage's quorum, by stage.",
            ["stage"],
            registry=r,
        )
        self.rollbacks = Counter(
            "warden_api_rollbacks",
            "Flag rollbacks run by the API (trigger force-restore), result verified|mismatch|error.",
            ["trigger", "result"],
            registry=r,
        )
        self.audit_events = Counter(
            "warden_api_audit_events_accepted",
            "Audit events accepted by POST /audit/events, result created|duplicate.",
            ["result"],
            registry=r,
        )
        self.ops_calls = Counter(
            "warden_ops_endpoint_calls",
            "Calls of dev/operational endpoints, result ok|error|disabled|denied.",
            ["endpoint", "result"],
            registry=r,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, f"{status // 100}xx").inc()
        self.latency.labels(route, method).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

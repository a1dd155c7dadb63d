"""Built-in metric check templates: the thresholds named by the source checklist.

A plan uses one by name (`template: im-channel-down`) and may override any field or
pass `params`. Every template reads the metric names the sample service exports; point
`params.metric` (scrape) or `params.query` (prometheus) at your own series.
"""

from __future__ import annotations

from typing import Any

_SCRAPE = "scrape"
_PROMETHEUS = "prometheus"


def _selector(params: dict[str, Any]) -> str:
    selector = str(params.get("selector", "")).strip()
    return f"{{{selector}}}" if selector and not selector.startswith("{") else selector


def _im_channel_down(params: dict[str, Any]) -> dict[str, Any]:
    metric = str(params.get("metric", "im_channel_up"))
    if params.get("provider", _SCRAPE) == _PROMETHEUS:
        query: dict[str, Any] = {"provider": _PROMETHEUS, "query": f"min({metric}{_selector(params)})"}
    else:
        query = {"provider": _SCRAPE, "kind": "gauge", "metric": metric, "aggregate": "min"}
    return {
        "query": query,
        "min": 1,
        "for": params.get("for", "30s"),
        "interval": params.get("interval", "5s"),
        "action": "notify",
        "notify": ["operations"],
    }


def _sla_overdue_rate(params: dict[str, Any]) -> dict[str, Any]:
    overdue = str(params.get("metric", "sla_overdue_total"))
    total = str(params.get("denominator", "sla_conversations_total"))
    if params.get("provider", _SCRAPE) == _PROMETHEUS:
        window = params.get("window", "5m")
        sel = _selector(params)
        query: dict[str, Any] = {
            "provider": _PROMETHEUS,
            "query": f"sum(rate({overdue}{sel}[{window}])) / sum(rate({total}{sel}[{window}]))",
        }
    else:
        query = {"provider": _SCRAPE, "kind": "ratio", "metric": overdue, "denominator": total}
    return {
        "query": query,
        "max": float(params.get("threshold", 0.05)),
        "interval": params.get("interval", "10s"),
        "action": "notify",
        "notify": ["committee"],
    }


def _audit_gap(params: dict[str, Any]) -> dict[str, Any]:
    metric = str(params.get("metric", "audit_last_event_timestamp_seconds"))
    if params.get("provider", _SCRAPE) == _PROMETHEUS:
        query: dict[str, Any] = {
            "provider": _PROMETHEUS,
            "query": f"time() - max({metric}{_selector(params)})",
        }
    else:
        query = {"provider": _SCRAPE, "kind": "age", "metric": metric, "aggregate": "max"}
    return {
        "query": query,
        "max": float(params.get("threshold", 300)),
        "interval": params.get("interval", "10s"),
        "action": "rollback",
        "notify": ["operations"],
    }


def _latency_p95(params: dict[str, Any]) -> dict[str, Any]:
    metric = str(params.get("metric", "im_channel_latency_seconds"))
    if params.get("provider", _SCRAPE) == _PROMETHEUS:
        window = params.get("window", "1m")
        query: dict[str, Any] = {
            "provider": _PROMETHEUS,
            "query": f"histogram_quantile(0.95, sum by (le) (rate({metric}_bucket{_selector(params)}[{window}])))",
        }
    else:
        query = {"provider": _SCRAPE, "kind": "quantile", "metric": metric, "quantile": 0.95}
    return {
        "query": query,
        "max": float(params.get("threshold", 0.5)),
        "interval": params.get("interval", "10s"),
        "action": "rollback",
    }


def _external_api_error_rate(params: dict[str, Any]) -> dict[str, Any]:
    errors = str(params.get("metric", "external_api_errors_total"))
    total = str(params.get("denominator", "external_api_requests_total"))
    if params.get("provider", _SCRAPE) == _PROMETHEUS:
        window = params.get("window", "1m")
        sel = _selector(params)
        query: dict[str, Any] = {
            "provider": _PROMETHEUS,
            "query": f"sum(rate({errors}{sel}[{window}])) / sum(rate({total}{sel}[{window}]))",
        }
    else:
        query = {"provider": _SCRAPE, "kind": "ratio", "metric": errors, "denominator": total}
    return {
        "query": query,
        "max": float(params.get("threshold", 0.05)),
        "interval": params.get("interval", "10s"),
        "action": "rollback",
        "notify": ["operations"],
    }


TEMPLATES = {
    "im-channel-down": (
        _im_channel_down,
        "An IM channel is down for 30s or more: alert operations (notice + active alert in status).",
    ),
    "sla-overdue-rate": (
        _sla_overdue_rate,
        "SLA overdue rate above 5%: governance review notice to the committee.",
    ),
    "audit-gap": (
        _audit_gap,
        "No audit event for 5 minutes: rollback protection and a notice to operations.",
    ),
    "latency-p95": (_latency_p95, "IM channel latency p95 above the threshold (default 0.5s): roll back."),
    "external-api-error-rate": (
        _external_api_error_rate,
        "External API error rate above the threshold (default 5%): roll back and notify operations.",
    ),
}


def expand_template(data: dict[str, Any]) -> dict[str, Any]:
    """Merge a template's defaults under the fields the plan set explicitly."""
    name = data["template"]
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r}; built-in templates: {', '.join(sorted(TEMPLATES))}")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("'params' must be a mapping")
    provider = params.get("provider", _SCRAPE)
    if provider not in (_SCRAPE, _PROMETHEUS):
        raise ValueError(f"template params.provider must be 'scrape' or 'prometheus', not {provider!r}")
    build, _ = TEMPLATES[name]
    merged = _hold_key(build(params))
    merged.update({k: v for k, v in _hold_key(data).items() if k != "template"})
    merged["template"] = name
    return merged


def _hold_key(fields: dict[str, Any]) -> dict[str, Any]:
    """`for` is the plan's spelling of the `hold` field; merge under one key."""
    if "for" not in fields:
        return dict(fields)
    out = {k: v for k, v in fields.items() if k != "for"}
    out["hold"] = fields["for"]
    return out

"""Built-in metric check templates: the thresholds named by the source checklist.

A plan uses one by name (`template: im-channel-down`) and may override any field or
pass `params`. Every template reads the metric names the sample service exports; point
`params.metric` (scrape) or `params.query` (prometheus) at your own series.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_SCRAPE = "scrape"
_PROMETHEUS = "prometheus"
_EXACT_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _selector(params: dict[str, Any]) -> str:
    selector = str(params.get("selector", "")).strip()
    return f"{{{selector}}}" if selector and not selector.startswith("{") else selector


def _labels(params: dict[str, Any]) -> dict[str, str]:
    """`selector: 'channel="wecom"'` as exact label matches for the scrape provider."""
    text = str(params.get("selector", "")).strip().strip("{}").strip()
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _EXACT_MATCHER.match(text, pos)
        if match is None:
            raise ValueError(
                f"params.selector {text!r}: the scrape provider matches labels exactly "
                '(name="value", ...); use params.provider: prometheus for =~, != and !~'
            )
        labels[match.group(1)] = match.group(2).replace('\\"', '"')
        pos = match.end()
    return labels


def _im_channel_down(params: dict[str, Any]) -> dict[str, Any]:
    metric = str(params.get("metric", "im_channel_up"))
    if params.get("provider", _SCRAPE) == _PROMETHEUS:
        query: dict[str, Any] = {
            "provider": _PROMETHEUS,
            "query": f"min({metric}{_selector(params)})",
        }
    else:
        query = {
            "provider": _SCRAPE,
            "kind": "gauge",
            "metric": metric,
            "labels": _labels(params),
            "aggregate": "min",
        }
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
        labels = _labels(params)
        query = {
            "provider": _SCRAPE,
            "kind": "ratio",
            "metric": overdue,
            "labels": labels,
            "denominator": total,
            "denominator_labels": labels,
        }
    return {
        "query": query,
        "max": float(params.get("threshold", 0.05)),
        "interval": params.get("interval", "1m"),
        # A governance signal: minutes without conversations are recorded, never pause the release.
        "inconclusive_limit": int(params.get("inconclusive_limit", UNLIMITED)),
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
        query = {
            "provider": _SCRAPE,
            "kind": "age",
            "metric": metric,
            "labels": _labels(params),
            "aggregate": "max",
        }
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
        query = {
            "provider": _SCRAPE,
            "kind": "quantile",
            "metric": metric,
            "labels": _labels(params),
            "quantile": 0.95,
        }
    return {
        "query": query,
        "max": float(params.get("threshold", 1.0)),
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
        labels = _labels(params)
        query = {
            "provider": _SCRAPE,
            "kind": "ratio",
            "metric": errors,
            "labels": labels,
            "denominator": total,
            "denominator_labels": labels,
        }
    return {
        "query": query,
        "max": float(params.get("threshold", 0.05)),
        "interval": params.get("interval", "10s"),
        "action": "rollback",
        "notify": ["operations"],
    }


#: An `inconclusive_limit` no window reaches (a 7-day bake at 1s intervals is 604,800 measurements).
UNLIMITED = 1_000_000

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
    "latency-p95": (
        _latency_p95,
        "IM channel latency p95 above the threshold (default 1s, across channels): roll back.",
    ),
    "external-api-error-rate": (
        _external_api_error_rate,
        "External API error rate above the threshold (default 5%): roll back and notify operations.",
    ),
}


def expand_template(data: dict[str, Any]) -> dict[str, Any]:
    """Merge a template's defaults under the fields the plan set explicitly."""
    name = data["template"]
    if not isinstance(name, str):
        raise ValueError(
            f"'template' must be a template name, not {type(name).__name__}; "
            f"built-in templates: {', '.join(sorted(TEMPLATES))}"
        )
    if name not in TEMPLATES:
        raise ValueError(
            f"unknown template {name!r}; built-in templates: {', '.join(sorted(TEMPLATES))}"
        )
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("'params' must be a mapping")
    provider = params.get("provider", _SCRAPE)
    if provider not in (_SCRAPE, _PROMETHEUS):
        raise ValueError(
            f"template params.provider must be 'scrape' or 'prometheus', not {provider!r}"
        )
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


@dataclass(frozen=True)
class TemplateInfo:
    """One row of `warden plan templates`: what a template watches and what it does."""

    name: str
    description: str
    watches: str
    condition: str
    hold: str
    interval: str
    action: str
    notify: list[str] = field(default_factory=list)
    prometheus_query: str = ""
    params: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "watches": self.watches,
            "condition": self.condition,
            "for": self.hold,
            "interval": self.interval,
            "action": self.action,
            "notify": list(self.notify),
            "prometheus_query": self.prometheus_query,
            "params": list(self.params),
        }


#: Params every template accepts; `denominator` and `window` only where they apply.
_PARAMS = {
    "im-channel-down": ["provider", "metric", "selector", "for", "interval"],
    "sla-overdue-rate": [
        "provider",
        "metric",
        "denominator",
        "selector",
        "threshold",
        "window",
        "interval",
        "inconclusive_limit",
    ],
    "audit-gap": ["provider", "metric", "selector", "threshold", "interval"],
    "latency-p95": ["provider", "metric", "selector", "threshold", "window", "interval"],
    "external-api-error-rate": [
        "provider",
        "metric",
        "denominator",
        "selector",
        "threshold",
        "window",
        "interval",
    ],
}


def list_templates() -> list[TemplateInfo]:
    """The built-in templates with their default thresholds, for `warden plan templates`."""
    from warden.models.common import format_duration
    from warden.models.metrics import MetricCheck, PrometheusQuery, ScrapeQuery

    rows = []
    for name, (_, description) in sorted(TEMPLATES.items()):
        check = MetricCheck.model_validate({"name": name, "template": name})
        prom = MetricCheck.model_validate(
            {"name": name, "template": name, "params": {"provider": _PROMETHEUS}}
        )
        query = check.query
        assert isinstance(query, ScrapeQuery)
        watches = {
            "gauge": f"{query.aggregate} of {query.metric}",
            "age": f"now - {query.aggregate} of {query.metric}",
            "ratio": f"increase {query.metric} / increase {query.denominator}",
            "quantile": f"p{round((query.quantile or 0) * 100)} of {query.metric}",
        }.get(query.kind, f"{query.kind} of {query.metric}")
        rows.append(
            TemplateInfo(
                name=name,
                description=description,
                watches=watches,
                condition=check.condition(),
                hold=format_duration(check.hold),
                interval=format_duration(check.interval),
                action=check.action.value,
                notify=list(check.notify),
                prometheus_query=prom.query.query
                if isinstance(prom.query, PrometheusQuery)
                else "",
                params=_PARAMS.get(name, []),
            )
        )
    return rows


def render_templates() -> str:
    """`list_templates()` as a plain-text table."""
    rows = list_templates()
    header = ("template", "watches", "normal", "for", "every", "action", "notify")
    table = [header] + [
        (
            r.name,
            r.watches,
            r.condition,
            "-" if r.hold == "0s" else r.hold,
            r.interval,
            r.action,
            ",".join(r.notify) or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table
    ]
    lines.append("")
    lines += [f"{r.name}: {r.description}" for r in rows]
    return "\n".join(lines)

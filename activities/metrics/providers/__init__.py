"""Metric providers: prometheus (PromQL), scrape (an exposition endpoint), http-json."""

from __future__ import annotations

import httpx

from activities.metrics.providers.base import (
    MeasureContext,
    MetricError,
    MetricProvider,
    Reading,
)
from activities.metrics.providers.http_json import HttpJsonProvider
from activities.metrics.providers.prometheus import PrometheusProvider
from activities.metrics.providers.scrape import ScrapeProvider
from warden.settings import Settings

__all__ = [
    "HttpJsonProvider",
    "MeasureContext",
    "MetricError",
    "MetricProvider",
    "PrometheusProvider",
    "Reading",
    "ScrapeProvider",
    "build_providers",
]


def build_providers(settings: Settings, http: httpx.AsyncClient) -> dict[str, MetricProvider]:
    """Every provider by the `provider:` name a plan uses."""
    timeout = settings.http_timeout_s
    providers: list[MetricProvider] = [
        PrometheusProvider(
            http,
            url=settings.prometheus_url,
            token=settings.prometheus_token.get_secret_value()
            if settings.prometheus_token
            else None,
            username=settings.prometheus_username,
            password=(
                settings.prometheus_password.get_secret_value()
                if settings.prometheus_password
                else None
            ),
            timeout_s=timeout,
        ),
        ScrapeProvider(http, timeout_s=timeout),
        HttpJsonProvider(http, timeout_s=timeout),
    ]
    return {p.name: p for p in providers}

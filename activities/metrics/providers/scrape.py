"""Reads a Prometheus exposition endpoint (e.g. a service's `/metrics`) directly.

Not a PromQL engine: one metric by name, exact label matches, and six kinds
(gauge, counter, rate, ratio, quantile, age). Anything more needs the prometheus provider.

Rates need two scrapes. The previous scrape of each check is kept in the check's state
(`provider_state`): every measurement of a rate, ratio or quantile covers the time since
the previous one. When there is no usable previous scrape (the first measurement, a
changed query, or one older than max(3 intervals, 5 minutes)), the provider takes a
baseline scrape and asks to be called again after min(sample_window, interval); that
baseline is not a measurement.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any

import httpx
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from activities.metrics.providers.base import (
    MeasureContext,
    MetricError,
    Reading,
    http_get,
    response_error,
)
from warden.models.metrics import ScrapeQuery

ACCEPT = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"
#: A previous scrape older than this (and than 3 intervals) is not used as a rate baseline.
MAX_BASELINE_AGE_S = 300.0

Series = list[tuple[dict[str, str], float]]


class Exposition:
    """Samples of one scrape, by sample name (`x_total`, `x_bucket`, `x`)."""

    def __init__(self, text: str, openmetrics: bool = False) -> None:
        self.samples: dict[str, Series] = {}
        self.types: dict[str, str] = {}
        parse = openmetrics_families if openmetrics else text_string_to_metric_families
        for family in parse(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))

    def series(self, name: str, labels: dict[str, str]) -> Series:
        return [(lab, val) for lab, val in self.samples.get(name, []) if _matches(lab, labels)]

    def names_like(self, name: str) -> list[str]:
        stem = name.removesuffix("_total")
        return sorted(n for n in self.samples if n.startswith(stem))[:5]


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k, "") == v for k, v in wanted.items())


class ScrapeProvider:
    name = "scrape"

    def __init__(self, http: httpx.AsyncClient, *, timeout_s: float = 10.0) -> None:
        self._http = http
        self._timeout_s = timeout_s

    async def scrape(self, url: str, ctx: MeasureContext) -> Exposition:
        response = await http_get(
            self._http,
            url,
            ctx,
            timeout_s=self._timeout_s,
            headers={"Accept": ACCEPT},
            what="scrape",
        )
        if response.status_code != 200:
            raise response_error("scrape", url, response)
        openmetrics = response.headers.get("content-type", "").startswith(
            "application/openmetrics-text"
        )
        try:
            return await asyncio.to_thread(Exposition, response.text, openmetrics)
        except ValueError as exc:
            raise MetricError(f"{url} is not a Prometheus exposition: {exc}") from None

    async def measure(
        self, query: ScrapeQuery, ctx: MeasureContext, state: dict[str, Any] | None
    ) -> Reading:
        url = ctx.url(query.url)
        exposition = await self.scrape(url, ctx)
        if query.kind in ("gauge", "counter", "age"):
            return _instant(query, exposition, ctx)
        return _over_interval(query, exposition, ctx, state)


# -- instant kinds ----------------------------------------------------------------------------


def _instant(query: ScrapeQuery, exposition: Exposition, ctx: MeasureContext) -> Reading:
    name = _sample_name(query, exposition, query.metric)
    series = exposition.series(name, query.labels)
    if not series:
        return Reading(None, _missing(exposition, name, query.labels))
    value, where = _aggregate(series, query.aggregate)
    if query.kind != "age":
        return Reading(value, f"{query.aggregate} over {len(series)} series = {value:.6g}{where}")
    if value <= 0:
        return Reading(None, f"{name} is {value:g}: nothing recorded yet")
    age = max(0.0, ctx.now.timestamp() - value)
    return Reading(age, f"{age:.1f}s since {name}{where}")


def _aggregate(series: Series, how: str) -> tuple[float, str]:
    values = [v for _, v in series]
    if how == "sum":
        return math.fsum(values), ""
    if how == "avg":
        return math.fsum(values) / len(values), ""
    pick = min if how == "min" else max
    labels, value = pick(series, key=lambda s: s[1])
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return value, f" ({shown})" if shown and len(series) > 1 else ""


# -- kinds over the interval between two scrapes ----------------------------------------------


def _over_interval(
    query: ScrapeQuery, exposition: Exposition, ctx: MeasureContext, state: dict[str, Any] | None
) -> Reading:
    now = ctx.now.timestamp()
    signature = query.model_dump_json(exclude={"sample_window"})
    previous = state if state and state.get("query") == signature else None
    max_age = max(3 * ctx.interval_s, MAX_BASELINE_AGE_S)
    if previous is not None and not 0 < now - float(previous.get("at", 0)) <= max_age:
        previous = None
    current = _snapshot(query, exposition)
    if isinstance(current, Reading):
        if previous is not None:
            return Reading(None, current.message, previous)
        # Not exposed yet: labelled counters and histograms appear with their first event,
        # so an empty baseline is exact (every series that shows up started from zero).
        current = {}
    fresh = {"at": now, "query": signature, "values": current}
    if previous is None:
        wait = min(query.sample_window.total_seconds(), ctx.interval_s)
        return Reading(None, f"baseline scrape taken; measuring in {wait:g}s", fresh, wait)
    elapsed = now - float(previous["at"])
    before: dict[str, float] = previous.get("values") or {}
    increases = {key: _increase(before.get(key), value) for key, value in current.items()}
    if query.kind == "rate":
        rate = increases["n"] / elapsed
        return Reading(rate, f"rate {rate:.6g}/s over {elapsed:.1f}s", fresh)
    if query.kind == "ratio":
        num, den = increases["n"], increases["d"]
        if den <= 0:
            # No traffic: keep the older baseline, so the next ratio covers the whole quiet stretch.
            return Reading(
                None,
                f"{query.denominator} did not increase in {elapsed:.1f}s (no traffic): no usable ratio",
                previous,
            )
        ratio = num / den
        return Reading(ratio, f"{num:g}/{den:g} = {ratio:.6g} over {elapsed:.1f}s", fresh)
    reading = _quantile(query, increases, elapsed, fresh)
    if reading.value is None:
        # No observations: keep the older baseline, as for a ratio without traffic.
        return Reading(None, reading.message, previous)
    return reading


def _snapshot(query: ScrapeQuery, exposition: Exposition) -> dict[str, float] | Reading:
    """The cumulative values a kind needs, summed over the matching series."""
    if query.kind == "quantile":
        name = query.metric.removesuffix("_bucket") + "_bucket"
        if name not in exposition.samples and query.metric in exposition.samples:
            raise MetricError(
                f"{query.metric} is not a histogram (no {name} series); kind 'quantile' needs one"
            )
        series = [(lab, val) for lab, val in exposition.series(name, query.labels) if "le" in lab]
        if not series:
            return Reading(None, _missing(exposition, name, query.labels))
        buckets: dict[str, float] = {}
        for labels, value in series:
            le = labels["le"]
            try:
                bound = float(le)
            except ValueError:
                raise MetricError(f"{name} has a bucket with le={le!r}") from None
            key = "+Inf" if math.isinf(bound) else repr(bound)
            buckets[key] = buckets.get(key, 0.0) + value
        if "+Inf" not in buckets:
            raise MetricError(f'{name} has no le="+Inf" bucket')
        return buckets
    name = _sample_name(query, exposition, query.metric)
    series = exposition.series(name, query.labels)
    if not series:
        return Reading(None, _missing(exposition, name, query.labels))
    values = {"n": math.fsum(v for _, v in series)}
    if query.kind == "ratio":
        assert query.denominator is not None
        den_name = _sample_name(query, exposition, query.denominator)
        den_series = exposition.series(den_name, query.denominator_labels)
        if not den_series:
            return Reading(None, _missing(exposition, den_name, query.denominator_labels))
        values["d"] = math.fsum(v for _, v in den_series)
    return values


def _increase(before: float | None, now: float) -> float:
    """Counter increase; a counter that went down was reset (the process restarted)."""
    if before is None:
        return now
    return now - before if now >= before else now


def _quantile(
    query: ScrapeQuery, increases: dict[str, float], elapsed: float, fresh: dict[str, Any]
) -> Reading:
    """Prometheus' histogram_quantile over the bucket increases."""
    q = query.quantile or 0.5
    buckets = sorted(
        ((math.inf if k == "+Inf" else float(k), v) for k, v in increases.items()),
        key=lambda b: b[0],
    )
    total = buckets[-1][1]
    if total <= 0:
        return Reading(None, f"no observations of {query.metric} in {elapsed:.1f}s", fresh)
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for index, (upper, count) in enumerate(buckets):
        if count >= rank:
            if math.isinf(upper):
                # Like Prometheus: the answer is the highest finite bucket bound.
                value = buckets[index - 1][0] if index > 0 else math.nan
            elif index == 0 and upper <= 0:
                value = upper
            else:
                span = count - lower_count
                value = lower_bound + (upper - lower_bound) * (
                    (rank - lower_count) / span if span > 0 else 1.0
                )
            observed = int(round(total))
            return Reading(
                value,
                f"p{q * 100:g} = {value:.6g} over {observed} observation(s) in {elapsed:.1f}s",
                fresh,
            )
        lower_bound, lower_count = upper, count
    return Reading(None, f"{query.metric} buckets are not cumulative", fresh)


# -- names and messages -----------------------------------------------------------------------


def _sample_name(query: ScrapeQuery, exposition: Exposition, metric: str) -> str:
    """The sample to read; a counter may be named with or without `_total`."""
    if metric in exposition.samples:
        return metric
    if query.kind in ("counter", "rate", "ratio") and metric + "_total" in exposition.samples:
        return metric + "_total"
    if metric + "_bucket" in exposition.samples:
        raise MetricError(
            f"{metric} is a histogram; use kind 'quantile' (or {metric}_count / {metric}_sum)"
        )
    return metric


def _missing(exposition: Exposition, name: str, labels: dict[str, str]) -> str:
    everything = exposition.samples.get(name)
    if not everything:
        similar = exposition.names_like(name)
        hint = f" (similar: {', '.join(similar)})" if similar else ""
        return f"{name} is not exposed{hint}: no data"
    label_sets = _label_sets(lab for lab, _ in everything)
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"no series of {name} matches {{{wanted}}} (exposed: {label_sets}): no data"


def _label_sets(labels: Iterable[dict[str, str]]) -> str:
    shown = sorted(
        {",".join(f'{k}="{v}"' for k, v in sorted(lab.items()) if k != "le") for lab in labels}
    )
    return "; ".join("{" + s + "}" for s in shown[:3]) + (" ..." if len(shown) > 3 else "")

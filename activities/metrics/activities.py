"""The `run_checks` activity: metric checks before promotion and guards during flag steps and bakes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from temporalio import activity

from activities.metrics.clock import Clock, SystemClock
from activities.metrics.engine import MEASURE_TIMEOUT_S, SLEEP_SLICE_S, CheckRun
from activities.metrics.providers import MetricProvider, build_providers
from warden.http import new_client
from warden.models.metrics import ChecksInput, ChecksReport, CheckState
from warden.settings import Settings

log = logging.getLogger("warden.metrics")


class MetricActivities:
    """Metric checks with their providers and clock.

    A guard watches a whole window inside one activity, heartbeating its counters; a retried
    attempt (worker restart, timeout) resumes from the last heartbeat instead of starting
    over, so a seven-day bake costs a handful of history events, not one per measurement.
    """

    def __init__(
        self,
        providers: Mapping[str, MetricProvider],
        *,
        clock: Clock | None = None,
        sleep_slice_s: float = SLEEP_SLICE_S,
        heartbeat_gap_s: float = 1.0,
        measure_timeout_s: float = MEASURE_TIMEOUT_S,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.clock: Clock = clock or SystemClock()
        self._sleep_slice_s = sleep_slice_s
        self._heartbeat_gap_s = heartbeat_gap_s
        self._measure_timeout_s = measure_timeout_s
        self._http = http

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> MetricActivities:
        http = new_client(timeout=settings.http_timeout_s)
        return cls(
            build_providers(settings, http),
            clock=clock,
            measure_timeout_s=settings.http_timeout_s + 5.0,
            http=http,
        )

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    @activity.defn(name="run_checks")
    async def run_checks(self, input: ChecksInput) -> ChecksReport:
        resume = resume_point(activity.info().heartbeat_details)
        if resume is not None:
            log.info(
                "resuming %s checks of %s/%s from the last heartbeat (%.0fs left, trace %s)",
                input.phase,
                input.release_id,
                input.stage,
                resume[1],
                input.trace_id,
            )
        run = CheckRun(
            input,
            self.providers,
            self.clock,
            heartbeat=_heartbeat,
            resume=resume,
            sleep_slice_s=self._sleep_slice_s,
            heartbeat_gap_s=self._heartbeat_gap_s,
            measure_timeout_s=self._measure_timeout_s,
        )
        return await run.run()


def _heartbeat(states: list[CheckState], window_left: float) -> None:
    activity.heartbeat([s.model_dump(mode="json") for s in states], window_left)


def resume_point(details: Sequence[Any]) -> tuple[list[CheckState], float] | None:
    """(states, window left) from a previous attempt's heartbeat, if it left one."""
    if len(details) < 2:
        return None
    raw_states, window_left = details[0], details[1]
    try:
        states = [CheckState.model_validate(s) for s in raw_states]
        return states, float(window_left)
    except (TypeError, ValueError):
        log.warning("ignoring unreadable heartbeat details of an earlier attempt")
        return None

"""How measurements become a decision: Argo Rollouts' analysis semantics, plus `for:` and actions.

Per check (see docs/metric-checks.md for the full comparison with Argo Rollouts):
- every `interval` after `initial_delay` the provider is asked for one number;
- a value inside the thresholds is successful; outside them it is failed once the breach has
  lasted `for:` (until then it is pending and counts neither way); no usable value (missing,
  NaN, ±Inf) is inconclusive, never a pass; a provider error is an error;
- the check fails when failed > failure_limit, is inconclusive when inconclusive >
  inconclusive_limit or consecutive errors > consecutive_error_limit, and (before promotion)
  is successful once `count` measurements that are not errors or pending were taken;
- a dry-run check is measured and reported but never decides.

One `CheckRun` evaluates all checks of one call in a single loop: it sleeps until the next
measurement is due (in slices, heartbeating), measures every due check concurrently, and
stops as soon as the outcome is known. One loop means one sleeper, which keeps virtual time
(`ManualClock`) exact in tests.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from activities.metrics.clock import Clock
from activities.metrics.providers.base import MeasureContext, MetricError, MetricProvider, Reading
from warden.models.common import format_duration
from warden.models.metrics import (
    ACTION_PRIORITY,
    CheckAction,
    CheckPhase,
    ChecksInput,
    ChecksOutcome,
    ChecksReport,
    CheckState,
    Measurement,
    MeasurementPhase,
    MetricCheck,
)

log = logging.getLogger("warden.metrics")

Heartbeat = Callable[[list[CheckState], float], None]

#: Longest single sleep: the activity heartbeats at least this often (heartbeat timeout 30s).
SLEEP_SLICE_S = 5.0
#: Measurements that take longer than this count as an error.
MEASURE_TIMEOUT_S = 30.0

_MISSING = (CheckPhase.INCONCLUSIVE, CheckPhase.ERROR)


class CheckRun:
    """One `run_checks` call: a pre-promotion run (`count` measurements each) or a guard window."""

    def __init__(
        self,
        input: ChecksInput,
        providers: Mapping[str, MetricProvider],
        clock: Clock,
        *,
        heartbeat: Heartbeat | None = None,
        resume: tuple[list[CheckState], float] | None = None,
        sleep_slice_s: float = SLEEP_SLICE_S,
        heartbeat_gap_s: float = 1.0,
        measure_timeout_s: float = MEASURE_TIMEOUT_S,
    ) -> None:
        self.input = input
        self.providers = providers
        self.clock = clock
        self.guard = input.phase == "guard"
        self._heartbeat = heartbeat
        self._sleep_slice_s = max(0.01, sleep_slice_s)
        self._heartbeat_gap_s = heartbeat_gap_s
        self._measure_timeout_s = measure_timeout_s
        self._last_beat = -math.inf
        now = clock.now()
        self.started_at = now
        # The workflow's view of which alerts are active: a change against it is reported.
        self._reported_alerting = {s.name: s.alerting for s in input.state}
        earlier = {s.name: s for s in (resume[0] if resume else input.state)}
        window_s = resume[1] if resume else input.window_s
        self.deadline = now + timedelta(seconds=max(0.0, window_s)) if self.guard else None
        self.checks = input.checks
        self.states: list[CheckState] = []
        for check in self.checks:
            state = earlier.get(check.name)
            if state is None:
                state = CheckState(name=check.name)
            else:
                state = state.model_copy(deep=True)
            state.action = check.action
            state.dry_run = check.dry_run
            if state.next_at is None:
                state.next_at = now + check.initial_delay
            self.states.append(state)

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> ChecksReport:
        self._beat(force=True)
        while True:
            now = self.clock.now()
            report = self._decide(now)
            if report is not None:
                self._beat(force=True)
                self._log(report)
                return report
            due = [(c, s) for c, s in self._active() if s.next_at is not None and s.next_at <= now]
            if due:
                if len(due) == 1:
                    await self._measure(*due[0])
                else:
                    await asyncio.gather(*(self._measure(c, s) for c, s in due))
                self._beat()
                continue
            wake = min(
                (s.next_at for _, s in self._active() if s.next_at is not None),
                default=now + timedelta(seconds=self._sleep_slice_s),
            )
            if self.deadline is not None:
                wake = min(wake, self.deadline)
            delay = (wake - now).total_seconds()
            await self.clock.sleep(min(max(delay, 0.0), self._sleep_slice_s))
            self._beat()

    def _active(self) -> list[tuple[MetricCheck, CheckState]]:
        pairs = list(zip(self.checks, self.states, strict=True))
        if self.guard:
            return pairs
        return [(c, s) for c, s in pairs if s.phase == CheckPhase.RUNNING]

    def window_left(self, now: datetime | None = None) -> float:
        if self.deadline is None:
            return 0.0
        return max(0.0, (self.deadline - (now or self.clock.now())).total_seconds())

    def _beat(self, force: bool = False) -> None:
        if self._heartbeat is None:
            return
        mono = time.monotonic()
        if not force and mono - self._last_beat < self._heartbeat_gap_s:
            return
        self._last_beat = mono
        self._heartbeat(self.states, self.window_left())

    # -- one measurement ------------------------------------------------------------------------

    async def _measure(self, check: MetricCheck, state: CheckState) -> None:
        assert check.query is not None
        now = self.clock.now()
        ctx = MeasureContext(
            base_url=self.input.base_url,
            trace_id=self.input.trace_id,
            release_id=self.input.release_id,
            stage=self.input.stage,
            check=check.name,
            interval_s=check.interval.total_seconds(),
            now=now,
        )
        error: str | None = None
        reading = Reading(None)
        provider = self.providers.get(check.query.provider)
        try:
            if provider is None:
                raise MetricError(f"this worker has no {check.query.provider!r} metric provider")
            async with asyncio.timeout(self._measure_timeout_s):
                reading = await provider.measure(check.query, ctx, state.provider_state)
        except MetricError as exc:
            error = str(exc)
        except TimeoutError:
            error = f"no answer within {self._measure_timeout_s:g}s"
        except Exception as exc:  # a provider bug must not end the guard; it is counted and shown
            log.warning(
                "metric provider %s failed on check %s (release %s, stage %s, trace %s)",
                check.query.provider,
                check.name,
                self.input.release_id,
                self.input.stage,
                self.input.trace_id,
                exc_info=True,
            )
            error = f"{type(exc).__name__}: {exc}"
        if error is None and reading.retry_in_s is not None:
            # A baseline (e.g. the first scrape of a rate): not a measurement; measure again soon.
            state.provider_state = reading.state
            state.next_at = now + timedelta(seconds=max(0.0, reading.retry_in_s))
            state.message = reading.message
            return
        if error is None:
            state.provider_state = reading.state
        record(
            check,
            state,
            now,
            reading.value,
            error or reading.message,
            error=error is not None,
            guard=self.guard,
        )
        scheduled = (state.next_at or now) + check.interval
        state.next_at = scheduled if scheduled > now else now + check.interval

    # -- the decision ---------------------------------------------------------------------------

    def _decide(self, now: datetime) -> ChecksReport | None:
        deciding = [(c, s) for c, s in zip(self.checks, self.states, strict=True) if not c.dry_run]
        tripped = [
            (c, s)
            for c, s in deciding
            if s.phase == CheckPhase.FAILED
            and c.action in (CheckAction.ROLLBACK, CheckAction.PAUSE)
        ]
        if tripped:
            check, _ = min(tripped, key=lambda p: ACTION_PRIORITY[p[0].action])
            return self._report(ChecksOutcome.FAILED, now, check.name, check.action)
        missing = [c for c, s in deciding if s.phase in _MISSING]
        if self.guard:
            changed = [
                c
                for c, s in deciding
                if c.action == CheckAction.NOTIFY
                and s.alerting != self._reported_alerting.get(c.name, False)
            ]
            if changed:
                return self._report(
                    ChecksOutcome.ALERT_CHANGED, now, changed[0].name, CheckAction.NOTIFY
                )
            if missing:
                return self._report(ChecksOutcome.INCONCLUSIVE, now, missing[0].name, None)
            assert self.deadline is not None
            if now >= self.deadline:
                return self._report(ChecksOutcome.PASSED, now)
            return None
        if any(s.phase == CheckPhase.RUNNING for s in self.states):
            return None
        if missing:
            return self._report(ChecksOutcome.INCONCLUSIVE, now, missing[0].name, None)
        notified = [c for c, s in deciding if s.phase == CheckPhase.FAILED]
        if notified:
            return self._report(ChecksOutcome.FAILED, now, notified[0].name, CheckAction.NOTIFY)
        return self._report(ChecksOutcome.PASSED, now)

    def _report(
        self,
        outcome: ChecksOutcome,
        now: datetime,
        tripped: str | None = None,
        action: CheckAction | None = None,
    ) -> ChecksReport:
        states = [s.model_copy(deep=True) for s in self.states]
        if self.guard and outcome == ChecksOutcome.PASSED:
            for state in states:
                if state.phase == CheckPhase.RUNNING:
                    if state.measurements:
                        state.phase = CheckPhase.SUCCESSFUL
                    else:
                        state.message = "no measurement was due in the window"
        return ChecksReport(
            phase=self.input.phase,
            outcome=outcome,
            checks=states,
            tripped=tripped,
            action=action,
            started_at=self.started_at,
            finished_at=now,
            window_left_s=self.window_left(now),
        )

    def _log(self, report: ChecksReport) -> None:
        level = logging.INFO if report.outcome == ChecksOutcome.PASSED else logging.WARNING
        log.log(
            level,
            "%s checks %s (release %s, stage %s, trace %s): %s",
            report.phase,
            report.outcome.value,
            self.input.release_id,
            self.input.stage,
            self.input.trace_id,
            report.summary(),
        )


# -- counting ----------------------------------------------------------------------------------


def record(
    check: MetricCheck,
    state: CheckState,
    now: datetime,
    value: float | None,
    message: str,
    *,
    error: bool = False,
    guard: bool = False,
) -> Measurement:
    """Count one measurement into `state` and re-assess the check's phase."""
    if error:
        state.errors += 1
        state.consecutive_errors += 1
        measurement = Measurement(at=now, phase=MeasurementPhase.ERROR, message=message)
    else:
        state.consecutive_errors = 0
        if value is None or not math.isfinite(value):
            state.inconclusive += 1
            measurement = Measurement(
                at=now, phase=MeasurementPhase.INCONCLUSIVE, message=message or "no usable value"
            )
        elif not check.breached(value):
            state.breach_since = None
            state.successful += 1
            measurement = Measurement(
                at=now, phase=MeasurementPhase.SUCCESSFUL, value=value, message=message
            )
        else:
            if state.breach_since is None:
                state.breach_since = now
            held = now - state.breach_since
            outside = f"{value:.4g} is outside {check.condition()}"
            if held >= check.hold:
                state.failed += 1
                lasted = f" for {format_duration(held)}" if check.hold else ""
                measurement = Measurement(
                    at=now,
                    phase=MeasurementPhase.FAILED,
                    value=value,
                    message=f"{outside}{lasted}; {message}",
                )
            else:
                measurement = Measurement(
                    at=now,
                    phase=MeasurementPhase.PENDING,
                    value=value,
                    message=f"{outside} for {format_duration(held)} of {format_duration(check.hold)}; {message}",
                )
    state.measurements.append(measurement)
    del state.measurements[: -check.keep]
    assess(check, state, measurement, guard=guard)
    return measurement


def assess(check: MetricCheck, state: CheckState, last: Measurement, *, guard: bool) -> None:
    """The check's phase from its counters (Argo's assessMetricStatus, failure first)."""
    if guard and check.action == CheckAction.NOTIFY and not check.dry_run:
        if state.alerting and last.phase == MeasurementPhase.SUCCESSFUL:
            # Back to normal: the alert clears and the next episode needs failure_limit+1 again.
            state.alerting = False
            state.failed = 0
            state.phase = CheckPhase.RUNNING
            state.message = f"{check.name} back to normal: {last.message}"
            return
        if not state.alerting and state.failed > check.failure_limit:
            state.alerting = True
    if state.failed > check.failure_limit:
        state.phase = CheckPhase.FAILED
        tolerated = (
            f" ({state.failed} failed > failure_limit {check.failure_limit})"
            if check.failure_limit
            else ""
        )
        state.message = f"{check.name}: {_last_of(state, MeasurementPhase.FAILED)}{tolerated}"
    elif state.consecutive_errors > check.consecutive_error_limit:
        state.phase = CheckPhase.ERROR
        state.message = (
            f"{check.name}: {state.consecutive_errors} consecutive errors > consecutive_error_limit "
            f"{check.consecutive_error_limit}: {last.message}"
        )
    elif state.inconclusive > check.inconclusive_limit:
        state.phase = CheckPhase.INCONCLUSIVE
        state.message = (
            f"{check.name} inconclusive ({state.inconclusive} > inconclusive_limit "
            f"{check.inconclusive_limit}): {_last_of(state, MeasurementPhase.INCONCLUSIVE)}"
        )
    elif not guard and state.measured >= check.measurements_due:
        state.phase = CheckPhase.SUCCESSFUL
        state.message = f"{check.name}: {state.measured} measurement(s), {last.message}"
    else:
        state.phase = CheckPhase.RUNNING
        state.message = f"{check.name}: {last.phase.value}: {last.message}"


def _last_of(state: CheckState, phase: MeasurementPhase) -> str:
    found = next((m for m in reversed(state.measurements) if m.phase == phase), None)
    return found.message if found else ""

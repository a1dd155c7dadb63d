"""Check semantics (Argo Rollouts' analysis plus `for:` and actions) with scripted answers.

The provider is scripted so each test chooses every answer; time is a ManualClock, so
windows of minutes or days run in milliseconds. The activity runs in Temporal's
ActivityEnvironment, which delivers heartbeats and cancellation like a worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.metrics import ManualClock, MeasureContext, MetricActivities, SystemClock
from tests.metrics.support import ScriptedProvider, boom, check, checks_input
from warden.models.metrics import (
    CheckAction,
    CheckPhase,
    ChecksInput,
    ChecksOutcome,
    ChecksReport,
    CheckState,
    MeasurementPhase,
)

OK, BAD = 0.01, 0.5


class Harness:
    def __init__(
        self, scripts: dict[str, list[Any]], clock: Any = None, heartbeat_gap_s: float = 0
    ) -> None:
        self.clock = clock or ManualClock()
        self.provider = ScriptedProvider(scripts)
        self.activities = MetricActivities(
            {"prometheus": self.provider}, clock=self.clock, heartbeat_gap_s=heartbeat_gap_s
        )
        self.env = ActivityEnvironment()
        self.beats: list[tuple[Any, ...]] = []
        self.env.on_heartbeat = lambda *details: self.beats.append(details)
        self.start = self.clock.now()

    async def run(self, input: ChecksInput) -> ChecksReport:
        return await self.env.run(self.activities.run_checks, input)

    def offsets(self, name: str) -> list[float]:
        """Seconds after the start at which `name` was measured."""
        return [(c.now - self.start).total_seconds() for c in self.provider.calls.get(name, [])]


# -- pre-promotion runs ------------------------------------------------------------------------


async def test_count_measurements_at_interval_after_initial_delay_pass() -> None:
    h = Harness({"error-rate": [OK]})
    report = await h.run(checks_input([check(count=3, interval="10s", initial_delay="5s")]))
    assert report.outcome == ChecksOutcome.PASSED
    assert h.offsets("error-rate") == [5, 15, 25]
    state = report.checks[0]
    assert (state.phase, state.successful, state.failed) == (CheckPhase.SUCCESSFUL, 3, 0)
    assert report.window_left_s == 0


async def test_failed_when_failures_exceed_failure_limit_and_stops_early() -> None:
    h = Harness({"error-rate": [BAD, OK, BAD, OK, OK]})
    report = await h.run(checks_input([check(count=5, failure_limit=1)]))
    assert report.outcome == ChecksOutcome.FAILED
    assert report.tripped == "error-rate" and report.action == CheckAction.ROLLBACK
    assert report.checks[0].failed == 2
    assert len(h.offsets("error-rate")) == 3  # the run ends at the failure that decides it


async def test_failures_within_failure_limit_pass() -> None:
    h = Harness({"error-rate": [BAD, OK, BAD, OK, OK]})
    report = await h.run(checks_input([check(count=5, failure_limit=2)]))
    assert report.outcome == ChecksOutcome.PASSED
    assert report.checks[0].failed == 2


@pytest.mark.parametrize("missing", [None, math.nan, math.inf])
async def test_missing_or_nan_is_inconclusive_never_a_pass(missing: float | None) -> None:
    h = Harness({"error-rate": [missing]})
    report = await h.run(checks_input([check()]))
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    assert report.checks[0].measurements[-1].phase == MeasurementPhase.INCONCLUSIVE


async def test_inconclusive_when_count_exceeds_inconclusive_limit() -> None:
    h = Harness({"error-rate": [None, OK, math.nan, OK]})
    limited = await h.run(checks_input([check(count=4, inconclusive_limit=1)]))
    assert limited.outcome == ChecksOutcome.INCONCLUSIVE
    assert limited.tripped == "error-rate"
    h = Harness({"error-rate": [None, OK, math.nan, OK]})
    tolerated = await h.run(checks_input([check(count=4, inconclusive_limit=2)]))
    assert tolerated.outcome == ChecksOutcome.PASSED


async def test_consecutive_errors_beyond_the_limit_make_the_check_inconclusive() -> None:
    h = Harness({"error-rate": [boom(), boom(), OK, boom(), boom(), boom(), OK]})
    report = await h.run(checks_input([check(count=5, consecutive_error_limit=2)]))
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    state = report.checks[0]
    assert state.phase == CheckPhase.ERROR
    assert (state.errors, state.consecutive_errors) == (5, 3)
    assert "connection refused" in state.measurements[-1].message
    assert "consecutive errors" in state.message


async def test_errors_do_not_count_toward_count() -> None:
    h = Harness({"error-rate": [boom(), OK]})
    report = await h.run(checks_input([check(count=1)]))
    assert report.outcome == ChecksOutcome.PASSED
    assert report.checks[0].errors == 1 and report.checks[0].successful == 1


async def test_a_provider_bug_is_counted_as_an_error_not_a_crash() -> None:
    h = Harness({"error-rate": [RuntimeError("unexpected answer shape")]})
    report = await h.run(checks_input([check(consecutive_error_limit=0)]))
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    assert "RuntimeError: unexpected answer shape" in report.checks[0].measurements[-1].message


async def test_a_provider_missing_on_the_worker_is_an_error() -> None:
    h = Harness({})
    scrape = check(
        query={"provider": "scrape", "kind": "gauge", "metric": "im_channel_up"},
        consecutive_error_limit=0,
        min=1,
        max=None,
    )
    report = await h.run(checks_input([scrape]))
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    assert "no 'scrape' metric provider" in report.checks[0].measurements[-1].message


async def test_dry_run_is_measured_and_reported_but_never_decides() -> None:
    h = Harness({"error-rate": [OK], "shadow": [BAD]})
    report = await h.run(checks_input([check(), check("shadow", dry_run=True)]))
    assert report.outcome == ChecksOutcome.PASSED
    shadow = report.check("shadow")
    assert shadow is not None and shadow.phase == CheckPhase.FAILED and shadow.dry_run
    assert "(dry-run)" in report.summary()


async def test_a_dry_run_check_alone_never_fails_a_guard() -> None:
    h = Harness({"shadow": [BAD]})
    report = await h.run(checks_input([check("shadow", dry_run=True)], "guard", window_s=60))
    assert report.outcome == ChecksOutcome.PASSED
    assert report.window_left_s == 0
    assert report.checks[0].failed == 6


async def test_rollback_wins_over_pause_and_notify() -> None:
    h = Harness({"notify": [BAD], "pause": [BAD], "rollback": [BAD]})
    checks = [
        check("notify", action="notify"),
        check("pause", action="pause"),
        check("rollback", action="rollback"),
    ]
    report = await h.run(checks_input(checks))
    assert (report.outcome, report.tripped, report.action) == (
        ChecksOutcome.FAILED,
        "rollback",
        CheckAction.ROLLBACK,
    )
    h = Harness({"notify": [BAD], "pause": [BAD]})
    report = await h.run(checks_input(checks[:2]))
    assert (report.tripped, report.action) == ("pause", CheckAction.PAUSE)


async def test_notify_only_failure_is_failed_with_action_notify() -> None:
    h = Harness({"notify": [BAD], "error-rate": [OK]})
    report = await h.run(checks_input([check("notify", action="notify"), check()]))
    assert (report.outcome, report.tripped, report.action) == (
        ChecksOutcome.FAILED,
        "notify",
        CheckAction.NOTIFY,
    )


async def test_missing_evidence_outranks_a_notify_only_failure() -> None:
    h = Harness({"notify": [BAD], "error-rate": [None]})
    report = await h.run(checks_input([check("notify", action="notify"), check()]))
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    assert report.tripped == "error-rate"


# -- for: (hold) ------------------------------------------------------------------------------


async def test_for_30s_fails_only_once_the_breach_has_lasted_30s() -> None:
    h = Harness({"im-channel-down": [0.0]})
    down = check("im-channel-down", min=1, max=None, interval="10s", **{"for": "30s"})
    report = await h.run(checks_input([down], "guard", window_s=600))
    assert report.outcome == ChecksOutcome.FAILED
    phases = [m.phase for m in report.checks[0].measurements]
    assert phases == [MeasurementPhase.PENDING] * 3 + [MeasurementPhase.FAILED]
    assert h.offsets("im-channel-down") == [0, 10, 20, 30]
    assert "for 30s" in report.checks[0].measurements[-1].message
    assert report.window_left_s == 570


async def test_for_a_breach_shorter_than_for_never_fails() -> None:
    flapping = [0.0, 0.0, 1.0] * 10
    h = Harness({"im-channel-down": flapping})
    down = check("im-channel-down", min=1, max=None, interval="10s", **{"for": "30s"})
    report = await h.run(checks_input([down], "guard", window_s=300))
    assert report.outcome == ChecksOutcome.PASSED
    assert report.checks[0].failed == 0


async def test_pre_run_keeps_measuring_while_a_breach_is_pending() -> None:
    h = Harness({"im-channel-down": [0.0, 0.0, 0.0, 0.0]})
    down = check("im-channel-down", min=1, max=None, interval="10s", **{"for": "30s"})
    failed = await h.run(checks_input([down]))
    assert failed.outcome == ChecksOutcome.FAILED
    assert h.offsets("im-channel-down") == [0, 10, 20, 30]
    h = Harness({"im-channel-down": [0.0, 0.0, 1.0]})
    recovered = await h.run(checks_input([down]))
    assert recovered.outcome == ChecksOutcome.PASSED


# -- guards ------------------------------------------------------------------------------------


async def test_guard_trips_when_the_error_rate_starts_rising() -> None:
    h = Harness({"error-rate": [OK] * 5 + [BAD]})
    report = await h.run(checks_input([check()], "guard", window_s=600))
    assert (report.outcome, report.tripped, report.action) == (
        ChecksOutcome.FAILED,
        "error-rate",
        CheckAction.ROLLBACK,
    )
    assert report.window_left_s == 550
    assert report.checks[0].last_value == BAD


async def test_guard_passes_when_the_window_ends_clean() -> None:
    h = Harness({"error-rate": [OK]})
    report = await h.run(checks_input([check()], "guard", window_s=120))
    assert report.outcome == ChecksOutcome.PASSED
    assert report.window_left_s == 0
    assert report.checks[0].successful == 12
    assert report.checks[0].phase == CheckPhase.SUCCESSFUL


async def test_guard_pause_action_returns_failed_with_pause() -> None:
    h = Harness({"latency": [BAD]})
    report = await h.run(checks_input([check("latency", action="pause")], "guard", window_s=60))
    assert (report.outcome, report.action) == (ChecksOutcome.FAILED, CheckAction.PAUSE)


async def test_guard_inconclusive_when_a_deciding_check_errors() -> None:
    h = Harness({"error-rate": [OK, boom(), boom(), boom()]})
    report = await h.run(checks_input([check(consecutive_error_limit=2)], "guard", window_s=600))
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    assert report.tripped == "error-rate"
    assert report.window_left_s == 570


async def test_notify_check_returns_only_when_the_alert_starts_or_stops() -> None:
    answers = [1.0, 0.0, 0.0, 0.0, 1.0] + [1.0] * 100
    h = Harness({"im-channel-down": answers, "error-rate": [OK]})
    checks = [check("im-channel-down", min=1, max=None, action="notify"), check()]
    first = await h.run(checks_input(checks, "guard", window_s=600))
    assert first.outcome == ChecksOutcome.ALERT_CHANGED
    alert = first.check("im-channel-down")
    assert alert is not None and alert.alerting and "outside >= 1" in alert.message
    assert first.window_left_s == 590

    second = await h.run(
        checks_input(checks, "guard", window_s=first.window_left_s, state=first.checks)
    )
    assert second.outcome == ChecksOutcome.ALERT_CHANGED
    cleared = second.check("im-channel-down")
    assert cleared is not None and not cleared.alerting
    assert second.window_left_s == 560  # two more failing intervals did not return

    third = await h.run(
        checks_input(checks, "guard", window_s=second.window_left_s, state=second.checks)
    )
    assert third.outcome == ChecksOutcome.PASSED
    assert len(h.offsets("im-channel-down")) == 60


async def test_resumed_state_starts_counts_afresh_but_keeps_the_alert() -> None:
    state = CheckState(name="im-channel-down", alerting=True, failed=3, phase=CheckPhase.FAILED)
    resumed = state.resumed()
    assert resumed.alerting and resumed.failed == 0 and resumed.phase == CheckPhase.RUNNING


async def test_heartbeats_at_least_every_five_seconds_during_long_intervals() -> None:
    h = Harness({"error-rate": [OK]})
    await h.run(checks_input([check(interval="60s")], "guard", window_s=180))
    lefts = [details[1] for details in h.beats]
    assert lefts[0] == 180 and lefts[-1] == 0
    gaps = [a - b for a, b in zip(lefts, lefts[1:], strict=False)]
    assert max(gaps) <= 5.0
    states = h.beats[-1][0]
    assert states[0]["name"] == "error-rate" and states[0]["successful"] == 3


async def test_a_retried_guard_resumes_counts_and_window_from_heartbeat_details() -> None:
    env_box: dict[str, ActivityEnvironment] = {}

    def crash_worker(ctx: MeasureContext) -> float:
        env_box["env"].cancel()  # the worker goes away after this measurement
        return OK

    h = Harness({"error-rate": [OK, BAD, OK, crash_worker, OK, OK, BAD, OK]})
    env_box["env"] = h.env
    guard = checks_input([check(failure_limit=1)], "guard", window_s=3600)
    with pytest.raises(asyncio.CancelledError):
        await h.run(guard)
    states, left = h.beats[-1]
    assert states[0]["failed"] == 1 and left == 3600 - 30

    resumed_at = h.clock.now()
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(
        ActivityEnvironment.default_info(), attempt=2, heartbeat_details=[states, left]
    )
    report = await retry.run(h.activities.run_checks, guard)
    assert report.outcome == ChecksOutcome.FAILED  # the second failure counts: 2 > failure_limit 1
    assert report.checks[0].failed == 2
    # The window goes on from the heartbeat; it does not start over.
    assert report.finished_at is not None
    assert report.window_left_s == left - (report.finished_at - resumed_at).total_seconds()


async def test_cancellation_ends_a_long_guard_promptly() -> None:
    h = Harness({"error-rate": [OK]}, clock=SystemClock())
    task = asyncio.ensure_future(
        h.run(checks_input([check(interval="60s")], "guard", window_s=3600))
    )
    while not h.provider.calls:
        await asyncio.sleep(0.01)
    h.env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=30)
    assert len(h.provider.calls["error-rate"]) == 1


async def test_state_from_an_inconclusive_report_is_not_reused_as_a_pass() -> None:
    state = CheckState(name="error-rate", phase=CheckPhase.INCONCLUSIVE, inconclusive=1)
    h = Harness({"error-rate": [OK]})
    report = await h.run(checks_input([check()], "guard", window_s=60, state=[state]))
    assert report.outcome == ChecksOutcome.INCONCLUSIVE
    resumed = await h.run(checks_input([check()], "guard", window_s=60, state=[state.resumed()]))
    assert resumed.outcome == ChecksOutcome.PASSED


async def test_a_week_long_guard_is_one_activity_call() -> None:
    h = Harness({"error-rate": [OK]}, heartbeat_gap_s=1.0)
    week = timedelta(days=7).total_seconds()
    report = await h.run(checks_input([check(interval="10s")], "guard", window_s=week))
    assert report.outcome == ChecksOutcome.PASSED
    assert report.checks[0].successful == 60_480
    assert len(report.checks[0].measurements) == 10  # `keep` bounds the evidence

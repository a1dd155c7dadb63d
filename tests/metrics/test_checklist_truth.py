"""Checklist item 3 tells the truth: a notify-only check that trips is a warning, not a pass; a
stage checked by guards only shows what its guards found; a finished stage's guards say so."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.client import Client

from tests.metrics.test_workflow_guard import (
    BAD,
    OK,
    GuardedWorker,
    channel_down,
    error_rate,
    plan,
)
from warden.cli.render import junit_xml, stage_text
from warden.models.release import ChecklistKey, ItemStatus, ReleaseState
from warden.settings import Settings


@pytest_asyncio.fixture
async def guarded(
    client: Client, settings: Settings, task_queue: str
) -> AsyncIterator[GuardedWorker]:
    yield GuardedWorker(client, settings, task_queue)


async def test_a_notify_only_check_that_trips_is_a_warning_not_a_pass(
    guarded: GuardedWorker,
) -> None:
    guarded.provider.scripts["external-api-error-rate"] = [BAD]
    result, status, _ = await guarded.release(
        plan(checks=[error_rate(action="notify", phases=["pre"])])
    )
    assert result.outcome == ReleaseState.PROMOTED, result.reason
    [stage] = status.stages
    item = stage.item(ChecklistKey.THRESHOLDS)
    assert item.status == ItemStatus.WARNING
    assert "notify-only check external-api-error-rate tripped" in item.evidence
    messages = [e.message for e in status.timeline]
    assert not any(m.startswith("metric checks failed") for m in messages), messages
    assert any(m.startswith("metric checks passed with a warning") for m in messages)
    text = "\n".join(stage_text(stage))
    assert "[!] Every monitored threshold is normal" in text and "[✓] Every monitored" not in text
    xml = junit_xml(status)
    assert "<failure" not in xml and "warning: notify-only check" in xml


async def test_guards_only_show_the_measurements_they_passed(guarded: GuardedWorker) -> None:
    guarded.provider.scripts["external-api-error-rate"] = [OK]
    result, status, _ = await guarded.release(
        plan(checks=[error_rate(phases=["guard"])], bake="5m")
    )
    assert result.outcome == ReleaseState.PROMOTED, result.reason
    [stage] = status.stages
    item = stage.item(ChecklistKey.THRESHOLDS)
    assert item.status == ItemStatus.PASSED, item
    measured = sum(c.measured for c in stage.guards[-1].checks)
    assert measured >= 30 and f"guards passed: {measured} measurement(s)" in item.evidence
    lines = stage_text(stage)
    assert any(line.startswith("  guards finished: passed") for line in lines), lines
    assert not any(" running" in line for line in lines if "guards" in line), lines


async def test_guards_only_that_trip_fail_the_item(guarded: GuardedWorker) -> None:
    guarded.provider.scripts["external-api-error-rate"] = [OK, OK, BAD]
    result, status, _ = await guarded.release(
        plan(checks=[error_rate(phases=["guard"])], bake="5m")
    )
    assert result.outcome != ReleaseState.PROMOTED
    assert status.stages[0].item(ChecklistKey.THRESHOLDS).status == ItemStatus.FAILED


async def test_guards_only_with_an_alert_on_the_way_are_a_warning(guarded: GuardedWorker) -> None:
    guarded.provider.scripts["im-channel-down"] = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    result, status, _ = await guarded.release(plan(checks=[channel_down()], bake="10m"))
    assert result.outcome == ReleaseState.PROMOTED, result.reason
    item = status.stages[0].item(ChecklistKey.THRESHOLDS)
    assert item.status == ItemStatus.WARNING
    assert "notify-only alerts raised: im-channel-down" in item.evidence

"""Time as the checks see it: injectable, so a seven-day window can be tested in seconds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`; cancellable."""
        ...


class SystemClock:
    """Wall-clock time and asyncio sleeps."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """Virtual time: `sleep` moves the clock forward at once instead of waiting.

    For tests and benchmarks of long windows. One evaluation loop sleeps at a time, so
    advancing on sleep keeps the order of events exact; `sleep` still yields to the event
    loop, so heartbeats and cancellation get through.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self.slept = 0.0

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=max(0.0, seconds))

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        self.slept += max(0.0, seconds)
        await asyncio.sleep(0)

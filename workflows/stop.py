"""How a release stops before promotion, and how a gate's activity failure becomes such a stop."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from warden.models.release import ReleaseState
    from workflows.common import cause

T = TypeVar("T")


class ReleaseStop(Exception):
    """Ends the release without promotion; `outcome` is how it ends before any rollback."""

    def __init__(
        self, outcome: ReleaseState, reason: str, trigger: str, stage: str | None = None
    ) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.trigger = trigger
        self.stage = stage


async def gate_activity(gate: str, stage: str | None, awaitable: Awaitable[T]) -> T:
    """An activity failure (unreachable spec, bad config, retries spent) fails the stage, readably."""
    try:
        return await awaitable
    except ActivityError as exc:
        raise ReleaseStop(
            ReleaseState.FAILED, f"{gate} gate error: {cause(exc)}", gate, stage
        ) from None

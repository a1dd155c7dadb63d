"""Pause, resume and abort: the people's hold on a running release, and the checkpoints that honour it.

The release looks at its controls only between steps (`checkpoint`) and while it waits
(`abortable`): a pause stops it before its next step while guards keep watching; an abort
ends whatever it waits for and the release restores what it changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.ledger import ReleaseLedger
from workflows.stop import ReleaseStop

with workflow.unsafe.imports_passed_through():
    from warden.models.release import (
        AbortRequest,
        ControlOutcome,
        ControlRequest,
        ReleaseState,
        StageState,
    )
    from workflows.common import require_payload

T = TypeVar("T")


class ReleaseControl:
    def __init__(self, ledger: ReleaseLedger) -> None:
        self._ledger = ledger
        self.paused = False
        self.pause_reason: str | None = None
        self.abort_request: AbortRequest | None = None
        # Keys the pause notices apart (the timeline is capped, so its length cannot).
        self._auto_pauses = 0

    @property
    def aborting(self) -> bool:
        return self.abort_request is not None

    # -- inside the pipeline ---------------------------------------------------------------------

    async def checkpoint(self, step: str) -> None:
        """Between steps: honour abort, wait while paused, then say what runs next."""
        self.check_abort()
        if self.paused:
            self._ledger.step(f"paused before: {step}")
            self._ledger.publish()
            await workflow.wait_condition(lambda: not self.paused or self.aborting)
            self.check_abort()
        self._ledger.step(step)

    async def auto_pause(self, reason: str) -> None:
        """The release holds itself (inconclusive evidence, unsigned governance) until resumed."""
        ledger = self._ledger
        status = ledger.status
        self.paused = True
        self.pause_reason = reason
        status.paused = True
        status.pause_reason = reason
        status.state = ReleaseState.PAUSED
        ledger.publish()
        await ledger.record(
            "release.paused",
            "paused",
            f"paused automatically: {reason}",
            details={"reason": reason, "automatic": True},
        )
        self._auto_pauses += 1
        await ledger.notify(
            f"auto-pause:{self._auto_pauses}",
            f"Release {ledger.release_id} paused",
            f"{reason}. Resume: `warden release resume {ledger.release_id} --as <you>`; "
            f"abort: `warden release abort {ledger.release_id} --as <you> --reason ...`",
            severity="warning",
            audience=["owner", "operations"],
        )
        await self.checkpoint("resuming")

    def check_abort(self) -> None:
        request = self.abort_request
        if request is not None:
            status = self._ledger.status
            raise ReleaseStop(
                ReleaseState.ABORTED,
                f"aborted by {request.user}: {request.reason}",
                "abort",
                status.current_stage if self._current_stage_running() else None,
            )

    def _current_stage_running(self) -> bool:
        name = self._ledger.status.current_stage
        return bool(name) and self._ledger.stage(name or "").state in (
            StageState.RUNNING,
            StageState.WAITING_APPROVAL,
        )

    async def abortable(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` unless an abort arrives first; then cancel it and stop the release."""
        task = asyncio.ensure_future(awaitable)
        if not self.aborting:
            aborted = asyncio.ensure_future(workflow.wait_condition(lambda: self.aborting))
            await workflow.wait([task, aborted], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                aborted.cancel()
                return task.result()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, ActivityError):
            pass
        self.check_abort()
        raise AssertionError("unreachable: abort was requested")

    # -- the pause, resume and abort updates -----------------------------------------------------

    def validate_pause(self, request: ControlRequest) -> None:
        require_payload(request, ControlRequest, "pause")
        self._validate_running()
        if self.paused:
            raise ApplicationError(
                f"release {self._ledger.release_id} is already paused ({self.pause_reason})",
                type="AlreadyPaused",
                non_retryable=True,
            )

    async def pause(self, request: ControlRequest) -> ControlOutcome:
        status = self._ledger.status
        self.paused = True
        self.pause_reason = f"paused by {request.user}" + (
            f": {request.reason}" if request.reason else ""
        )
        status.paused = True
        status.pause_reason = self.pause_reason
        if status.state == ReleaseState.RUNNING:
            status.state = ReleaseState.PAUSED
        self._ledger.publish()
        await self._ledger.record(
            "release.paused",
            "paused",
            self.pause_reason,
            user=request.user,
            details={"reason": request.reason, "devIdentity": request.dev_identity},
            flush=True,
        )
        return ControlOutcome(
            state=status.state,
            message="paused: the release stops before its next step; guards keep watching",
        )

    def validate_resume(self, request: ControlRequest) -> None:
        require_payload(request, ControlRequest, "resume")
        self._validate_running()
        if not self.paused:
            raise ApplicationError(
                f"release {self._ledger.release_id} is not paused",
                type="NotPaused",
                non_retryable=True,
            )

    async def resume(self, request: ControlRequest) -> ControlOutcome:
        status = self._ledger.status
        self.paused = False
        self.pause_reason = None
        status.paused = False
        status.pause_reason = None
        if status.state == ReleaseState.PAUSED:
            status.state = ReleaseState.RUNNING
        self._ledger.publish()
        await self._ledger.record(
            "release.resumed",
            "resumed",
            f"resumed by {request.user}",
            user=request.user,
            details={"reason": request.reason, "devIdentity": request.dev_identity},
            flush=True,
        )
        return ControlOutcome(state=status.state, message="resumed")

    def validate_abort(self, request: AbortRequest) -> None:
        require_payload(request, AbortRequest, "abort")
        self._validate_running()
        if self.abort_request is not None:
            raise ApplicationError(
                f"release {self._ledger.release_id} is already being aborted by "
                f"{self.abort_request.user}",
                type="AlreadyAborting",
                non_retryable=True,
            )

    async def abort(self, request: AbortRequest) -> ControlOutcome:
        self.abort_request = request
        await self._ledger.record(
            "release.aborted",
            "requested",
            f"abort requested by {request.user}: {request.reason}",
            timeline_action="release.abort",
            user=request.user,
            details={"reason": request.reason, "devIdentity": request.dev_identity},
            flush=True,
        )
        return ControlOutcome(
            state=self._ledger.status.state,
            message="abort accepted: the release stops and restores any flags it changed",
        )

    def _validate_running(self) -> None:
        state = self._ledger.status.state
        if state.ended:
            raise ApplicationError(
                f"release {self._ledger.release_id} has already ended ({state.value})",
                type="ReleaseEnded",
                non_retryable=True,
            )
        if state == ReleaseState.ROLLING_BACK:
            raise ApplicationError(
                f"release {self._ledger.release_id} is rolling back",
                type="RollingBack",
                non_retryable=True,
            )


async def wait_until(condition: Callable[[], bool], at: datetime) -> bool:
    """Wait for `condition` until `at`; whether it holds then."""
    timeout = at - workflow.now()
    if timeout <= timedelta(0):
        return condition()
    try:
        await workflow.wait_condition(condition, timeout=timeout)
    except TimeoutError:
        return condition()
    return True

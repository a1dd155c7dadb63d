"""The worker's log as an operator reads it: one line for a failure an activity meant (a flag
that does not exist), a traceback only for a bug, and no line per HTTP request."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.cli.conftest import WARDEN
from tests.helpers import RecordingServer, plan_dict
from warden.flagstore.flagd_file import flag_file, init_flag_file
from warden.models.flags import FlagOperation
from warden.models.plan import parse_plan
from warden.models.release import ReleaseInput, ReleaseState
from warden.runtime.worker import ExpectedFailures
from warden.settings import Settings
from workflows.flags import FlagChangeWorkflow
from workflows.release import ReleaseWorkflow


async def test_the_worker_logs_expected_failures_in_one_line_and_no_http_requests(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(
        {
            "WARDEN_STATE_DIR": str(settings.state_dir),
            "WARDEN_TASK_QUEUE": settings.task_queue,
            "WARDEN_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "WARDEN_WEBHOOK_URLS": "",
        }
    )
    init_flag_file(flag_file(settings.flags_path, "production"), {"ai.solutions": 0})
    worker = await asyncio.create_subprocess_exec(
        WARDEN, "worker", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        with pytest.raises(WorkflowFailureError) as refused:
            await dev_env.client.execute_workflow(
                FlagChangeWorkflow.run,
                FlagOperation(
                    flag="chat.channel.feishu",
                    environment="production",
                    percent=0,
                    user="bob",
                    reason="gateway flapping",
                ),
                id=f"flags-production-feishu-{uuid.uuid4().hex[:6]}",
                task_queue=settings.task_queue,
                execution_timeout=timedelta(seconds=60),
            )
        assert "does not exist" in str(refused.value.cause)
        with RecordingServer() as target:
            data = plan_dict(target.url, version=f"5.0.{uuid.uuid4().hex[:6]}")
            data["stages"] = data["stages"][:2]
            plan = parse_plan(data)
            result = await dev_env.client.execute_workflow(
                ReleaseWorkflow.run,
                ReleaseInput(plan=plan, started_by="alice", trace_id="log"),
                id=plan.release_id,
                task_queue=settings.task_queue,
            )
            assert result.outcome == ReleaseState.PROMOTED
            assert len(target.requests) >= 2  # the smoke checks went over HTTP
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.stderr is not None
        log = (await asyncio.wait_for(worker.stderr.read(), 60)).decode()
        await worker.wait()
    failed = [line for line in log.splitlines() if "apply_flag_change failed" in line]
    assert len(failed) == 1, log
    assert "not retried" in failed[0] and "FlagNotFound: flag 'chat.channel.feishu'" in failed[0]
    assert "Traceback" not in log, log
    assert "HTTP Request" not in log, log
    assert "worker polling task queue" in log


def test_a_bug_keeps_its_traceback() -> None:
    """Only what an activity raises on purpose is shortened; anything else is a bug to read."""

    def record(error: BaseException) -> logging.LogRecord:
        try:
            raise error
        except BaseException:
            return logging.LogRecord(
                "temporalio.activity", logging.WARNING, __file__, 1,
                "Completing activity as failed", None, sys.exc_info(),
            )  # fmt: skip

    bug = record(KeyError("flags"))
    assert ExpectedFailures().filter(bug) and bug.exc_info is not None
    meant = record(ApplicationError("flag 'x' does not exist", type="FlagNotFound"))
    assert ExpectedFailures().filter(meant) and meant.exc_info is None
    assert "FlagNotFound: flag 'x' does not exist" in meant.getMessage()

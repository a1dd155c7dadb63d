"""Fuzz suite fixtures: a real dev server with a worker in this process. The tally of generated
cases is printed under pytest's summary by tests/conftest.py, which also gathers it from the
parallel workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.fuzz.live import Live
from tests.helpers import RecordingServer
from warden.runtime.worker import build_worker
from warden.settings import Settings


@pytest.fixture
def target() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest_asyncio.fixture
async def live(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> AsyncIterator[Live]:
    async with AsyncExitStack() as stack:
        async with build_worker(dev_env.client, settings, stack=stack):
            yield Live(
                dev_env.client, dev_env.client.service_client.config.target_host, settings, tmp_path
            )

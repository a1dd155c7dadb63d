"""Fixtures of the fault suite: worker processes on the test's own task queue, the loopback
service, and a dev server of the test's own that can be stopped and started again.

Every process a fixture starts is stopped by its PID in teardown, pass or fail.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.conftest import free_port
from tests.faults.support import DevServerProcess, Service, WorkerProcess
from tests.helpers import RecordingServer


@pytest.fixture
def fault_queue() -> str:
    return f"faults-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def service() -> Iterator[tuple[Service, RecordingServer]]:
    desk = Service()
    with RecordingServer(desk.handler) as server:
        yield desk, server


@pytest.fixture
def workers(tmp_path: Path, fault_queue: str) -> Iterator[Callable[[str], WorkerProcess]]:
    """`workers(address)`: a WorkerProcess (not yet started) on the test's task queue and state
    dir. Teardown stops whichever of its processes is still running."""
    made: list[WorkerProcess] = []

    def make(address: str) -> WorkerProcess:
        worker = WorkerProcess(address, fault_queue, tmp_path / "state", tmp_path / "logs")
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()


@pytest_asyncio.fixture
async def shared_worker(
    dev_env: WorkflowEnvironment, workers: Callable[[str], WorkerProcess]
) -> AsyncIterator[WorkerProcess]:
    """A worker process polling the session's dev server."""
    worker = workers(dev_env.client.service_client.config.target_host)
    worker.start()
    await worker.ready()
    yield worker


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[DevServerProcess]:
    """A dev server of this test's own (port and database file fixed), not yet started."""
    server = DevServerProcess(tmp_path / "server", free_port())
    yield server
    server.stop()

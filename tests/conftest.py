"""Shared fixtures: the real Temporal servers from the pip wheels, isolated settings, free ports.

`--workflow-environment time-skipping` (default) runs workflow tests on the Temporal
time-skipping test server; `--workflow-environment local` runs them on the dev server.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from warden.runtime.devserver import SEARCH_ATTRIBUTES, find_binary
from warden.settings import Settings


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A parallel worker hands its fuzz tally to the controller, which prints them all."""
    from tests.fuzz.support import TALLY

    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["fuzz_tally"] = {what: dict(outcomes) for what, outcomes in TALLY.counts.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    from tests.fuzz.support import TALLY

    tally = getattr(node, "workeroutput", {}).get("fuzz_tally", {})
    for what, outcomes in tally.items():
        for outcome, n in outcomes.items():
            TALLY.add(what, outcome, n)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.fuzz.support import PROFILE, TALLY

    if getattr(terminalreporter.config, "workeroutput", None) is not None:
        return  # a parallel worker: the controller prints the tally
    lines = TALLY.lines()
    if not lines:
        return
    terminalreporter.section(f"fuzz cases (profile {PROFILE})")
    for line in lines:
        terminalreporter.write_line(line)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--workflow-environment",
        default="time-skipping",
        choices=["time-skipping", "local"],
        help="Temporal server for workflow tests",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return asyncio.DefaultEventLoopPolicy()


@pytest_asyncio.fixture(scope="session")
async def time_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (or the dev server with --workflow-environment local)."""
    if request.config.getoption("--workflow-environment") == "local":
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=str(find_binary("temporal")),
            dev_server_extra_args=_sa_args(),
        )
    else:
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter,
            test_server_existing_path=str(find_binary("temporal-test-server")),
        )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real dev server (no time skipping) for CLI and end-to-end tests."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(find_binary("temporal")),
        dev_server_extra_args=_sa_args(),
    )
    yield env
    await env.shutdown()


def _sa_args() -> list[str]:
    args: list[str] = []
    for key, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{key}={kind}"]
    return args


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(tmp_path: Path, task_queue: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings isolated in a temp dir; the same values are exported for CLI subprocesses."""
    state = tmp_path / "state"
    values = {
        "WARDEN_STATE_DIR": str(state),
        "WARDEN_TASK_QUEUE": task_queue,
        "WARDEN_WEBHOOK_URLS": "",
        "WARDEN_AUTOSTART_WORKER": "false",
        "WARDEN_SEARCH_ATTRIBUTES": "false",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return Settings()


@pytest.fixture
def client(time_env: WorkflowEnvironment) -> Client:
    return time_env.client


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path

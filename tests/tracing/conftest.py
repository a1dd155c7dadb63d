"""Tracing tests: `warden worker` and `warden api` as their own processes, exporting their spans
to a real OTLP/HTTP receiver on loopback, against a real dev server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.cli.conftest import WARDEN, write_governance
from tests.conftest import free_port
from tests.harness.otlp import OtlpReceiver
from warden.settings import Settings


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


def traced_env(
    dev_env: WorkflowEnvironment, settings: Settings, receiver: OtlpReceiver, governance: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "OTEL_"))}
    env.update(
        {
            "WARDEN_STATE_DIR": str(settings.state_dir),
            "WARDEN_TASK_QUEUE": settings.task_queue,
            "WARDEN_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "WARDEN_SEARCH_ATTRIBUTES": "true",
            "WARDEN_AUTOSTART_WORKER": "false",
            "WARDEN_WEBHOOK_URLS": "",
            "WARDEN_GOVERNANCE_FILE": str(governance),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
    )
    return env


@pytest.fixture
def governance_tokens(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "governance.yaml"
    return path, write_governance(path, {"rita": ["release-manager"], "vera": ["viewer"]})


@asynccontextmanager
async def process(
    *args: str, env: dict[str, str], cwd: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        WARDEN, *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


@asynccontextmanager
async def traced_stack(env: dict[str, str], cwd: Path) -> AsyncIterator[str]:
    """`warden worker` and `warden api`, both tracing; yields the API's URL."""
    port = free_port()
    async with (
        process("worker", env=env, cwd=cwd),
        process("api", "--port", str(port), "--log-level", "warning", env=env, cwd=cwd) as api,
    ):
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            for _ in range(200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    if api.returncode is not None:
                        assert api.stderr is not None
                        raise AssertionError((await api.stderr.read()).decode()) from None
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("warden api never answered /healthz")
        yield url

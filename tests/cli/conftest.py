"""CLI tests run the real `warden` executable against a real dev server, with a worker in this process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from temporalio.testing import WorkflowEnvironment

from tests.helpers import RecordingServer, plan_dict, users_with_tokens
from warden.runtime.worker import build_worker
from warden.settings import Settings

WARDEN = str(Path(sys.executable).parent / "warden")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir

    async def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> Result:
        process = await asyncio.create_subprocess_exec(
            WARDEN,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, **(env or {})},
            cwd=self.workdir,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout)
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode())

    def write_plan(self, name: str, data: dict[str, Any]) -> Path:
        path = self.workdir / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


@pytest.fixture
def target() -> Any:
    with RecordingServer() as server:
        yield server


@pytest_asyncio.fixture
async def cli(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> AsyncIterator[Cli]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(
        {
            "WARDEN_STATE_DIR": str(settings.state_dir),
            "WARDEN_TASK_QUEUE": settings.task_queue,
            "WARDEN_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "WARDEN_SEARCH_ATTRIBUTES": "true",
            "WARDEN_USER": "alice",
        }
    )
    async with AsyncExitStack() as stack:
        async with build_worker(dev_env.client, settings, stack=stack):
            yield Cli(env, tmp_path)


def cli_plan(base_url: str, version: str, **overrides: Any) -> dict[str, Any]:
    plan = plan_dict(base_url, version=version, **overrides)
    for stage in plan["stages"]:
        if "signoff" in stage:
            stage["signoff"]["deadline"] = "10m"
            stage["signoff"]["escalate_before"] = "0s"
    return plan


def write_governance(path: Path, people: dict[str, list[str]]) -> dict[str, str]:
    """A governance file giving each person their roles and a new token; returns the tokens."""
    users, tokens = users_with_tokens(people)
    members = [{"user": u["name"]} for u in users if any("committee" in r for r in u["roles"])]
    path.write_text(
        yaml.safe_dump(
            {
                "version": "1",
                "access_committee": "board",
                "users": users,
                "committees": [
                    {"name": "board", "members": members or [{"user": users[0]["name"]}]}
                ],
            }
        )
    )
    return tokens


@asynccontextmanager
async def warden_api(cli: Cli, governance: Path) -> AsyncIterator[str]:
    """`warden api` as its own process on a free port (tokens from `governance`); yields its URL."""
    import httpx

    from tests.conftest import free_port

    port = free_port()
    process = await asyncio.create_subprocess_exec(
        WARDEN, "api", "--port", str(port), "--log-level", "warning",
        env={**cli.env, "WARDEN_GOVERNANCE_FILE": str(governance)}, cwd=cli.workdir,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            for _ in range(100):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    if process.returncode is not None:
                        assert process.stderr is not None
                        raise AssertionError((await process.stderr.read()).decode()) from None
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("warden api never answered /healthz")
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()

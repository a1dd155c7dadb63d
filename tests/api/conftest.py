"""API tests: the app served by uvicorn on 127.0.0.1 (its own Temporal connection, in a thread),
a real dev server, and a worker in this process on the test's task queue."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
import yaml
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from tests.conftest import free_port
from tests.helpers import RecordingServer, plan_dict, users_with_tokens
from warden.api import create_app
from warden.runtime.worker import build_worker
from warden.settings import Settings

#: Who is who in the governance file the tests write. alice starts releases and also sits on the
#: board (so her own approval is refused by separation of duties, not by a missing permission).
PEOPLE: dict[str, list[str]] = {
    "alice": ["release-manager", "committee-member:release-board"],
    "carol": ["committee-member:release-board"],
    "dave": ["committee-member:release-board"],
    "victor": ["viewer"],
    "oscar": ["operator"],
    "olga": ["operator"],
    "root": ["admin"],
}


@dataclass
class Governance:
    path: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, user: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}", **extra}


@pytest.fixture
def governance(tmp_path: Path) -> Governance:
    users, tokens = users_with_tokens(PEOPLE)
    document = {
        "version": "1",
        "access_committee": "release-board",
        "users": users,
        "committees": [
            {
                "name": "release-board",
                "members": [{"user": "carol"}, {"user": "dave"}, {"user": "alice"}],
                "quorum": 2,
            }
        ],
    }
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return Governance(path, tokens)


class ServedApi:
    """`create_app(settings)` under uvicorn on a free loopback port, in a thread with its own loop."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"api-{self.port}", daemon=True)

    def start(self) -> ServedApi:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=60)


ApiFactory = Callable[..., ServedApi]


@pytest.fixture
def serve_api(
    dev_env: WorkflowEnvironment, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApiFactory]:
    """Serve an app whose settings are the test's plus `WARDEN_*` overrides (e.g. OPS_ENDPOINTS="false")."""
    served: list[ServedApi] = []
    overridden: set[str] = set()
    address = dev_env.client.service_client.config.target_host

    def factory(**env: str) -> ServedApi:
        monkeypatch.setenv("WARDEN_TEMPORAL_ADDRESS", address)
        for key in overridden:  # each app sees only its own overrides
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(f"WARDEN_{key}", value)
            overridden.add(f"WARDEN_{key}")
        api = ServedApi(create_app(Settings())).start()
        served.append(api)
        return api

    yield factory
    for api in served:
        api.stop()


@pytest_asyncio.fixture
async def worker(dev_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        async with build_worker(dev_env.client, settings, stack=stack):
            yield


@pytest.fixture
def target() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


def api_plan(base_url: str, version: str, **overrides: Any) -> dict[str, Any]:
    """The four-stage test plan; pilot waits for 2 of carol, dave, alice."""
    plan = plan_dict(base_url, version=version, **overrides)
    for stage in plan["stages"]:
        if "signoff" in stage:
            stage["signoff"].update(
                {
                    "approvers": ["carol", "dave", "alice"],
                    "deadline": "10m",
                    "escalate_before": "0s",
                }
            )
    return plan


async def wait_for_status(
    client: httpx.AsyncClient,
    release_id: str,
    headers: dict[str, str],
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 60,
) -> dict[str, Any]:
    """Poll GET /releases/{id} until `predicate` holds on its JSON."""
    deadline = asyncio.get_running_loop().time() + timeout
    body: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        response = await client.get(f"/releases/{release_id}", headers=headers)
        if response.status_code == 200:
            body = response.json()
            if predicate(body):
                return body
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"release {release_id} did not get there; last status: {body.get('state')!r}, "
        f"step {body.get('current_step')!r}"
    )


def waiting_at(stage: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: s["state"] == "waiting_approval" and s["current_stage"] == stage


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` with these labels, in Prometheus text format (0 when none)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )

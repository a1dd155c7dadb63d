"""One machine, nothing started by hand: the CLI and the API start the embedded dev server and a
background worker themselves, and keep them in step with the settings they run with.

Real processes throughout: `temporal server start-dev` from the wheel (started by the CLI), the
background `python -m worker`, the `warden` executable, and the API under uvicorn.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
import yaml

from tests.api.conftest import ServedApi
from tests.cli.conftest import WARDEN, Result
from tests.conftest import free_port
from warden.api import create_app
from warden.settings import Settings
from warden.stores.governance import new_token


class Machine:
    """A clean environment on one machine: its own state dir and dev server ports."""

    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "state"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        self.env.update(
            {
                "WARDEN_STATE_DIR": str(self.state),
                "WARDEN_DEV_SERVER_PORT": str(free_port()),
                "WARDEN_DEV_SERVER_UI_PORT": str(free_port()),
                "WARDEN_USER": "alice",
            }
        )
        self.workdir = tmp_path

    async def warden(self, *args: str, **env: str) -> Result:
        process = await asyncio.create_subprocess_exec(
            WARDEN,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, **env},
            cwd=self.workdir,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode())


@pytest_asyncio.fixture
async def machine(tmp_path: Path) -> AsyncIterator[Machine]:
    found = Machine(tmp_path)
    try:
        yield found
    finally:
        await found.warden("server", "stop")  # the server and worker the CLI started


def _governance(path: Path) -> str:
    token, digest = new_token()
    users = [{"name": "alice", "roles": ["release-manager"], "token_sha256": digest}]
    users += [{"name": n, "roles": ["committee-member:board"]} for n in ("carol", "dave")]
    path.write_text(
        yaml.safe_dump(
            {
                "version": "1",
                "access_committee": "board",
                "users": users,
                "committees": [
                    {"name": "board", "members": [{"user": "carol"}, {"user": "dave"}], "quorum": 2}
                ],
            }
        )
    )
    return token


async def test_a_setting_exported_after_the_first_command_reaches_the_worker(
    machine: Machine, tmp_path: Path
) -> None:
    first = await machine.warden("access", "list")
    assert first.code == 0, first.stderr
    assert (machine.state / "worker.pid").exists()

    governance = tmp_path / "governance.yaml"
    token = _governance(governance)
    env = {"WARDEN_GOVERNANCE_FILE": str(governance), "WARDEN_TOKEN": token}
    status = await machine.warden("server", "status", **env)
    assert "differs from this shell in WARDEN_GOVERNANCE_FILE" in status.stdout, status.stdout

    asked = await machine.warden("governance", "signoff", "--reason", "first review", **env)
    assert asked.code == 0, asked.stderr
    assert "restarted the background worker: WARDEN_GOVERNANCE_FILE changed" in asked.stderr
    change_id = asked.stdout.strip().splitlines()[0]
    # The restarted worker reads the file: the request waits for the committee.
    for _ in range(100):
        shown = await machine.warden("access", "status", change_id, "--json", **env)
        assert shown.code == 0, shown.stderr
        if shown.json()["members"]:
            break
        await asyncio.sleep(0.2)
    assert shown.json()["state"] == "waiting", shown.stdout
    assert shown.json()["members"] == ["carol", "dave"]

    status = await machine.warden("server", "status", **env)
    assert f"WARDEN_GOVERNANCE_FILE={governance}" in status.stdout
    assert "differs" not in status.stdout


async def test_the_api_starts_the_server_again_after_it_was_stopped(machine: Machine) -> None:
    assert (await machine.warden("access", "list")).code == 0  # server and worker up
    env = {key: value for key, value in machine.env.items() if key.startswith("WARDEN_")}
    settings = Settings(
        **{key.removeprefix("WARDEN_").lower(): value for key, value in env.items()}
    )
    api = ServedApi(create_app(settings)).start()
    try:
        headers = {"X-Warden-User": "alice"}
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            assert (await http.get("/releases", headers=headers)).status_code == 200
            stopped = await machine.warden("server", "stop")
            assert "server: stopped" in stopped.stdout, stopped.stdout
            again = await http.get("/releases", headers=headers)
            assert again.status_code == 200, again.text
            assert (await http.get("/access/changes", headers=headers)).status_code == 200
    finally:
        api.stop()
    assert (machine.state / "worker.pid").exists()  # and a background worker again
    # ... on this machine's server, with the settings the API runs with (not the defaults)
    polling = [
        line
        for line in (machine.state / "worker.log").read_text().splitlines()
        if "polling" in line
    ]
    assert polling[-1].endswith(f"127.0.0.1:{env['WARDEN_DEV_SERVER_PORT']}"), polling

"""The embedded server the CLI starts by itself serves the Temporal Web UI, and
`warden server status` says where it is (or how to get it)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from tests.cli.conftest import Cli
from tests.conftest import free_port


@pytest_asyncio.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Cli]:
    """The CLI with no WARDEN_TEMPORAL_ADDRESS: it starts its own server, on free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(
        {
            "WARDEN_STATE_DIR": str(tmp_path / "state"),
            "WARDEN_DEV_SERVER_PORT": str(free_port()),
            "WARDEN_DEV_SERVER_UI_PORT": str(free_port()),
            "WARDEN_AUTOSTART_WORKER": "false",
        }
    )
    cli = Cli(env, tmp_path)
    try:
        yield cli
    finally:
        await cli("server", "stop")


async def test_the_auto_started_server_serves_the_web_ui(embedded: Cli) -> None:
    ui = f"http://127.0.0.1:{embedded.env['WARDEN_DEV_SERVER_UI_PORT']}"
    before = await embedded("server", "status")
    assert before.code == 3
    assert "Web UI: not running; the next warden command that needs Temporal starts" in (
        before.stdout
    )
    assert ui in before.stdout

    assert (await embedded("release", "list")).code == 0  # starts the embedded server
    status = await embedded("server", "status")
    assert status.code == 0, status.stderr
    assert f"Web UI: {ui}\n" in status.stdout
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(100):
            try:
                page = await http.get(ui + "/")
                if page.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    assert page.status_code == 200 and "<html" in page.text.lower()


async def test_a_taken_ui_port_starts_the_server_headless_and_status_says_so(
    embedded: Cli,
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(embedded.env["WARDEN_DEV_SERVER_UI_PORT"])))
        squatter.listen()
        assert (await embedded("release", "list")).code == 0  # still starts, headless
        status = await embedded("server", "status")
    assert status.code == 0
    assert "answers, but not for a server warden started here" in status.stdout
    after = await embedded("server", "status")
    assert "not served (this server runs headless); `warden server stop`" in after.stdout

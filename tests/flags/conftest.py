"""Fixtures for flag backend tests: flag files in a temp dir, and a real Unleash server.

The Unleash server (npm `unleash-server`, over a throwaway PostgreSQL cluster on 127.0.0.1)
starts once per test session and is stopped by PID at the end. Tests that need it are
skipped only when npm/node or PostgreSQL cannot be had on this machine.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.harness import unleash as unleash_harness
from tests.harness.postgres import PostgresCluster
from tests.harness.unleash import UnleashAdmin, UnleashServer
from warden.flagstore.flagd_file import FlagdFileBackend
from warden.flagstore.unleash import UnleashBackend


@pytest.fixture
def flags_dir(tmp_path: Path) -> Path:
    path = tmp_path / "flags"
    path.mkdir()
    return path


@pytest.fixture
def flagd_backend(flags_dir: Path) -> FlagdFileBackend:
    return FlagdFileBackend(flags_dir)


@pytest.fixture(scope="session")
def unleash_server() -> Iterator[UnleashServer]:
    reason = unleash_harness.missing_reason()
    if reason:
        pytest.skip(reason)
    try:
        unleash_harness.ensure_unleash()
        unleash_harness.ensure_node(
            unleash_harness.required_node_major(unleash_harness.unleash_version())
        )
    except RuntimeError as exc:
        pytest.skip(
            f"unleash-server {unleash_harness.unleash_version()} cannot be installed from npm: {exc}"
        )
    with PostgresCluster() as cluster, UnleashServer(cluster) as server:
        yield server


@pytest.fixture
def unleash_admin(unleash_server: UnleashServer) -> Iterator[UnleashAdmin]:
    with unleash_server.admin() as admin:
        yield admin


@pytest_asyncio.fixture
async def unleash_backend(unleash_server: UnleashServer) -> AsyncIterator[UnleashBackend]:
    backend = UnleashBackend(unleash_server.url, unleash_server.admin_token)
    yield backend
    await backend.aclose()


@pytest.fixture
def flag_name() -> str:
    """A flag name no other test uses (the Unleash server is shared by the session)."""
    return f"ai.solutions.t{uuid.uuid4().hex[:10]}"

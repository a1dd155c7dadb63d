"""Support Desk test fixtures: the app in-process for domain rules, a real process for flags and metrics."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from examples.support_desk.app import create_app
from examples.support_desk.config import DeskConfig
from examples.support_desk.flags import default_flags
from warden.flagstore.flagd_file import FlagdFileBackend, init_flag_file


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    path = tmp_path / "dev.flagd.json"
    init_flag_file(path, default_flags())
    return path


@pytest.fixture
def desk(flags_file: Path) -> Iterator[TestClient]:
    with TestClient(create_app(DeskConfig(flags_file=flags_file, seed=1))) as client:
        yield client


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def eventually(check: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll `check` until it holds or `timeout` seconds pass; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def set_percent(flags_file: Path, flag: str, percent: int) -> None:
    """Change a flag the way Release Warden does: its flagd-file backend, atomic rewrite."""
    environment = flags_file.name.removesuffix(".flagd.json")
    asyncio.run(FlagdFileBackend(flags_file.parent).set_percent(environment, flag, percent))


def scrape(url: str) -> str:
    return httpx.get(f"{url}/metrics", timeout=5).text

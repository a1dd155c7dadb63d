"""Real Support Desk processes on loopback for the contract gate's tests, one per build and flag state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.support_desk.config import Build
from examples.support_desk.flags import AI_SOLUTIONS, default_flags
from examples.support_desk.launcher import SupportDeskProcess
from warden.flagstore.flagd_file import init_flag_file


def start_desk(
    directory: Path, build: Build, ai_percent: int, api_token: str | None = None
) -> SupportDeskProcess:
    flags = directory / "dev.flagd.json"
    init_flag_file(flags, {**default_flags(), AI_SOLUTIONS: ai_percent})
    return SupportDeskProcess(flags_file=flags, build=build, api_token=api_token).start()


@pytest.fixture(scope="module")
def good_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupportDeskProcess]:
    """The good build with `ai.solutions` fully on: the new path is live and keeps its contract."""
    desk = start_desk(tmp_path_factory.mktemp("good"), "good", 100)
    yield desk
    desk.stop()


@pytest.fixture(scope="module")
def bad_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupportDeskProcess]:
    """The bad build with `ai.solutions` fully on: its AI-suggestions path breaks the contract."""
    desk = start_desk(tmp_path_factory.mktemp("bad"), "bad", 100)
    yield desk
    desk.stop()


@pytest.fixture(scope="module")
def bad_desk_flag_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupportDeskProcess]:
    """The bad build with `ai.solutions` at 0%: the broken path is never taken."""
    desk = start_desk(tmp_path_factory.mktemp("bad-off"), "bad", 0)
    yield desk
    desk.stop()

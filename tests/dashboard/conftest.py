"""Dashboard tests: Playwright driving Debian's /usr/bin/chromium (never a downloaded browser)
against `warden api` served by uvicorn on 127.0.0.1, a real dev server, a worker in this process
and the sample service (examples/support_desk) as a real process."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from tests.api.conftest import ServedApi, serve_api, worker  # noqa: F401 - fixtures
from tests.helpers import users_with_tokens

CHROMIUM = Path("/usr/bin/chromium")
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

#: alice owns and starts releases but is on no committee; carol and dave sit on the board.
PEOPLE: dict[str, list[str]] = {
    "alice": ["release-manager"],
    "carol": ["committee-member:release-board"],
    "dave": ["committee-member:release-board"],
    "oscar": ["operator"],
    "root": ["admin"],
}

playwright_api = pytest.importorskip("playwright.async_api")
launcher = pytest.importorskip("examples.support_desk.launcher")


@dataclass
class Governance:
    path: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


@pytest.fixture
def governance(tmp_path: Path) -> Governance:
    users, tokens = users_with_tokens(PEOPLE)
    document = {
        "version": "1",
        "access_committee": "release-board",
        "users": users,
        "committees": [
            {"name": "release-board", "members": [{"user": "carol"}, {"user": "dave"}], "quorum": 1}
        ],
    }
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return Governance(path, tokens)


@pytest.fixture(scope="module")
def desk() -> Iterator[Any]:
    with launcher.SupportDeskProcess(simulate_rps=20, seed=11) as process:
        yield process


@pytest.fixture
def dashboard_file(tmp_path: Path, desk: Any) -> Path:
    """The health cards watch the sample service as `pilot`; a channel down for 2s alerts."""
    path = tmp_path / "dashboard.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "service": "support-desk",
                "refresh": "500ms",
                "environments": [
                    {
                        "name": "pilot",
                        "base_url": desk.url,
                        "channels": ["feishu", "wecom", "email"],
                    }
                ],
                "cards": {
                    "channel_down": {
                        "template": "im-channel-down",
                        "params": {"for": "2s", "interval": "1s"},
                    },
                    "channel_latency": {"template": "latency-p95", "params": {"interval": "1s"}},
                },
            }
        )
    )
    return path


@pytest.fixture
def dashboard_api(
    serve_api: Any,  # noqa: F811
    governance: Governance,
    dashboard_file: Path,
) -> ServedApi:
    api: ServedApi = serve_api(
        GOVERNANCE_FILE=str(governance.path),
        DASHBOARD_FILE=str(dashboard_file),
        SEARCH_ATTRIBUTES="true",
    )
    return api


class Browser:
    """One Chromium page that records every request and fails on console errors."""

    def __init__(self, page: Any, artifacts: Path) -> None:
        self.page = page
        self.artifacts = artifacts
        self.requests: list[Any] = []
        self.console_errors: list[str] = []
        self.expected_statuses: set[int] = set()
        page.on("request", lambda request: self.requests.append(request))
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.console_errors.append(f"page error: {e}"))

    def expect_refusal(self, status: int) -> None:
        """A response the test provokes: the browser notes its failed load, that is no JS error."""
        self.expected_statuses.add(status)

    def unexpected_console_errors(self) -> list[str]:
        allowed = tuple(
            f"Failed to load resource: the server responded with a status of {s}"
            for s in self.expected_statuses
        )
        return [e for e in self.console_errors if not (allowed and e.startswith(allowed))]

    async def screenshot(self, name: str) -> Path:
        shot = self.artifacts / f"dashboard-{name}.png"
        await self.page.screenshot(path=str(shot), full_page=True)
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, DOCS_IMAGES / shot.name)
        return shot

    async def sign_in(self, base_url: str, token: str) -> None:
        await self.page.goto(f"{base_url}/ui/releases")
        await self.page.fill('input[name="token"]', token)
        await self.page.click('button[type="submit"]')
        await self.page.wait_for_selector("#who")


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (scripts/install-system-deps.sh installs it)")
    artifacts = tmp_path / "screenshots"
    artifacts.mkdir()
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:

            async def new_page() -> Browser:
                context = await chromium.new_context(viewport={"width": 1400, "height": 900})
                return Browser(await context.new_page(), artifacts)

            yield new_page
        finally:
            await chromium.close()

"""Dashboard: the pages under /ui/ against the API's own JSON endpoints, with 1,000 releases in
Temporal visibility.

A dev server (Warden* search attributes registered), a worker and `warden api` (uvicorn on
127.0.0.1, a governance file with tokens) run in this process. 1,000 one-stage releases are
started through ReleaseService (the same call as `POST /releases`) and finish; 3 more park at a
pilot sign-off. Then, signed in as a committee member:

- the releases list page (`GET /ui/releases`, first page of 25, which also asks the running
  releases on it for their current step) beside `GET /releases?limit=25`;
- one release's page (`GET /ui/releases/{id}`) beside `GET /releases/{id}`;
- a change on screen: Chromium (Playwright, /usr/bin/chromium) shows the release page while the
  benchmark pauses or resumes the release through the API; the clock stops when the page shows
  the new state. Beside it: the same change seen by polling `GET /releases/{id}` every 50 ms.

Targets: list ≤ 300 ms p95, release page ≤ 200 ms p95, change on screen ≤ 1.5 s p95. Prints
numbers; asserts nothing.

    .venv/bin/python -m bench.dashboard [--quick] [--releases 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import (
    BenchResult,
    DevServer,
    LoopbackService,
    Verdict,
    free_port,
    gather_limited,
    ms,
    percentile,
    release_worker,
    stop_on_sigterm,
)

CHROMIUM = Path("/usr/bin/chromium")
LIST_TARGET_S = 0.300
PAGE_TARGET_S = 0.200
SCREEN_TARGET_S = 1.5


def quick_plan(base_url: str, version: str) -> dict[str, Any]:
    return {
        "service": "bench-desk",
        "version": version,
        "owner": "alice",
        "stages": [{"name": "dev", "base_url": base_url, "smoke": [{"name": "up", "path": "/"}]}],
    }


def parked_plan(base_url: str, version: str) -> dict[str, Any]:
    return {
        "service": "bench-desk",
        "version": version,
        "owner": "alice",
        "stages": [
            {"name": "dev", "base_url": base_url, "smoke": [{"name": "health", "path": "/"}]},
            {
                "name": "pilot",
                "base_url": base_url,
                "smoke": [{"name": "health", "path": "/"}],
                "signoff": {"approvers": ["carol", "dave"], "quorum": 1, "deadline": "4h"},
            },
        ],
    }


class ServedApi:
    def __init__(self, settings: Any) -> None:
        import uvicorn

        from warden.api import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedApi:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


async def timed(n: int, call: Callable[[], Awaitable[httpx.Response]]) -> list[float]:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        response = await call()
        times.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url} answered {response.status_code}")
    return times


async def run(quick: bool = False, releases: int | None = None) -> BenchResult:
    from tests.helpers import users_with_tokens
    from warden.models.plan import parse_plan
    from warden.runtime.client import TemporalLink
    from warden.services.releases import ReleaseService
    from warden.settings import Settings

    count = releases or (200 if quick else 1000)
    samples = 20 if quick else 50
    changes = 6 if quick else 20
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="warden-bench-dashboard-") as tmp,
        LoopbackService() as service,
    ):
        users, tokens = users_with_tokens(
            {"alice": ["release-manager"], "carol": ["committee-member:release-board"]}
        )
        governance = Path(tmp) / "governance.yaml"
        governance.write_text(
            yaml.safe_dump(
                {
                    "version": "1",
                    "access_committee": "release-board",
                    "users": users,
                    "committees": [
                        {"name": "release-board", "members": [{"user": "carol"}], "quorum": 1}
                    ],
                }
            )
        )
        async with DevServer(in_memory=True) as server, AsyncExitStack() as stack:
            client = await server.client()
            task_queue = f"bench-dashboard-{uuid.uuid4().hex[:8]}"
            settings = Settings(
                state_dir=Path(tmp) / "state",
                task_queue=task_queue,
                temporal_address=server.address,
                webhook_urls=[],
                search_attributes=True,
                autostart_worker=False,
                governance_file=governance,
            )
            await stack.enter_async_context(
                release_worker(client, settings, task_queue=task_queue, stack=stack)
            )
            starter = ReleaseService(TemporalLink(settings, client))
            started = time.monotonic()
            await gather_limited(
                32,
                (
                    starter.start(parse_plan(quick_plan(service.url, f"1.0.{i}")), "alice")
                    for i in range(count)
                ),
            )
            parked = [
                (await starter.start(parse_plan(parked_plan(service.url, f"2.0.{i}")), "alice"))
                for i in range(3)
            ]
            start_s = time.monotonic() - started
            # every quick release finished, every parked one waits at pilot
            deadline = time.monotonic() + 600
            while True:
                running = [
                    r
                    async for r in client.list_workflows(
                        f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
                    )
                ]
                if len(running) <= 3:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(running)} releases still running after 10 min")
                await asyncio.sleep(1)
            target = parked[0].release_id
            while (await starter.status(target)).state.value != "waiting_approval":
                await asyncio.sleep(0.1)
            settled_s = time.monotonic() - started

            with ServedApi(settings) as api:
                bearer = {"Authorization": f"Bearer {tokens['carol']}"}
                alice = {"Authorization": f"Bearer {tokens['alice']}"}
                async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
                    signed = await http.post("/ui/signin", data={"token": tokens["carol"]})
                    if signed.status_code not in (200, 303) or "warden_session" not in http.cookies:
                        raise RuntimeError(
                            f"sign-in failed: {signed.status_code} {signed.text[-300:]}"
                        )
                    for _ in range(3):  # warm-up: connections, templates, plan cache
                        await http.get("/ui/releases")
                        await http.get(f"/ui/releases/{target}")
                        await http.get("/releases", params={"limit": 25}, headers=bearer)
                    ui_list = await timed(samples, lambda: http.get("/ui/releases"))
                    api_list = await timed(
                        samples, lambda: http.get("/releases", params={"limit": 25}, headers=bearer)
                    )
                    ui_page = await timed(samples, lambda: http.get(f"/ui/releases/{target}"))
                    api_page = await timed(
                        samples, lambda: http.get(f"/releases/{target}", headers=bearer)
                    )
                    listed = await http.get("/releases", params={"limit": 500}, headers=bearer)
                    in_visibility = len(listed.json()["releases"])
                    screen, polled = await change_to_screen(
                        api.url, http, target, tokens["carol"], alice, changes
                    )

    rows = [
        ["releases list: /ui/releases (HTML)", ms(percentile(ui_list, 0.5)), ms(percentile(ui_list, 0.95))],
        ["releases list: GET /releases?limit=25 (JSON)", ms(percentile(api_list, 0.5)), ms(percentile(api_list, 0.95))],
        ["one release: /ui/releases/{id} (HTML)", ms(percentile(ui_page, 0.5)), ms(percentile(ui_page, 0.95))],
        ["one release: GET /releases/{id} (JSON)", ms(percentile(api_page, 0.5)), ms(percentile(api_page, 0.95))],
    ]  # fmt: skip
    if screen:
        rows += [
            ["change → on screen (Chromium, page polling 1 s)", ms(percentile(screen, 0.5)), ms(percentile(screen, 0.95))],
            ["change → seen in GET /releases/{id} (polled every 50 ms)", ms(percentile(polled, 0.5)), ms(percentile(polled, 0.95))],
        ]  # fmt: skip
    result = BenchResult(
        name="dashboard",
        title="Dashboard: pages against the API's JSON, 1,000 releases in visibility"
        if count >= 1000
        else f"Dashboard: pages against the API's JSON, {count} releases in visibility",
        measures=(
            f"{count} finished one-stage releases and 3 parked at a pilot sign-off, started in "
            f"{start_s:.0f}s and settled after {settled_s:.0f}s; {samples} sequential requests per "
            f"page over one keep-alive connection, signed in as a committee member; {len(screen)} "
            "pause/resume changes made through the API while Chromium showed the release page."
        ),
        headers=["measure", "p50", "p95"],
        rows=rows,
    )
    result.verdicts += [
        Verdict("list page, p95", ms(percentile(ui_list, 0.95)), "≤ 300 ms", percentile(ui_list, 0.95) <= LIST_TARGET_S),
        Verdict("release page, p95", ms(percentile(ui_page, 0.95)), "≤ 200 ms", percentile(ui_page, 0.95) <= PAGE_TARGET_S),
        Verdict(
            "change on screen, p95",
            ms(percentile(screen, 0.95)) if screen else "not measured",
            "≤ 1.5 s",
            percentile(screen, 0.95) <= SCREEN_TARGET_S if screen else None,
        ),
    ]  # fmt: skip
    result.notes.append(
        f"GET /releases?limit=500 listed {in_visibility} releases (visibility holds {count + 3})."
    )
    if not screen:
        result.notes.append(
            "Change on screen not measured: /usr/bin/chromium or playwright missing."
        )
    result.raw = {"ui_list": ui_list, "api_list": api_list, "ui_page": ui_page, "api_page": api_page, "screen": screen, "polled": polled}  # fmt: skip
    result.seconds = time.monotonic() - began
    return result


async def change_to_screen(
    url: str,
    http: httpx.AsyncClient,
    release_id: str,
    token: str,
    manager: dict[str, str],
    changes: int,
) -> tuple[list[float], list[float]]:
    """Pause and resume `release_id` through the API `changes` times; how long until the page
    shows it, and until GET /releases/{id} shows it."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        return [], []
    if not CHROMIUM.exists():
        return [], []
    screen: list[float] = []
    polled: list[float] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/ui/signin")
            await page.fill('input[name="token"]', token)
            await page.click('button[type="submit"]')
            await page.wait_for_selector("#who")
            await page.goto(f"{url}/ui/releases/{release_id}")
            await page.wait_for_selector("#live")
            for i in range(changes):
                pausing = i % 2 == 0
                action = "pause" if pausing else "resume"
                body = {"reason": "bench"} if pausing else {}
                response = await http.post(
                    f"/releases/{release_id}/{action}", json=body, headers=manager
                )
                changed = time.perf_counter()
                if response.status_code != 200:
                    raise RuntimeError(f"{action} answered {response.status_code}: {response.text}")
                shown = "!== null" if pausing else "=== null"

                async def seen(expression: str) -> float:
                    await page.wait_for_function(expression, timeout=15_000)
                    return time.perf_counter()

                watcher = asyncio.create_task(
                    seen(f"document.querySelector('#live .badge.warn') {shown}")
                )
                while True:
                    status = (await http.get(f"/releases/{release_id}", headers=manager)).json()
                    if status["paused"] == pausing:
                        polled.append(time.perf_counter() - changed)
                        break
                    await asyncio.sleep(0.05)
                screen.append(await watcher - changed)
                await asyncio.sleep(0.3)
        finally:
            await browser.close()
    return screen, polled


def cli() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--releases", type=int, default=None, help="releases in visibility (default 1000)"
    )
    parser.add_argument("--quick", action="store_true", help="200 releases, fewer samples")
    args = parser.parse_args()
    print(asyncio.run(run(quick=args.quick, releases=args.releases)).text())


if __name__ == "__main__":
    cli()

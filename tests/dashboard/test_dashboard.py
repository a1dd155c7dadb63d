"""The dashboard in a real browser: what a committee member, the release owner and an operator see.

Every test fails when the page logs a JavaScript console error, checks that every request the
page made itself (htmx's fetches) carried X-Request-Id and X-Trace-Id, and saves screenshots
(under the test's tmp dir, and as docs/images/dashboard-*.png for docs/dashboard.md).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api.conftest import ServedApi, api_plan, wait_for_status, waiting_at
from tests.dashboard.conftest import Browser, Governance, launcher
from warden.stores.governance import hash_token

pytestmark = pytest.mark.timeout(300)


async def start_release(
    api: ServedApi, governance: Governance, desk: Any, version: str, **pilot: Any
) -> str:
    plan = api_plan(desk.url, version)
    for stage in plan["stages"]:
        if "signoff" in stage:
            stage["signoff"].update({"approvers": ["carol", "dave"], "quorum": 1})
            stage.update(pilot)
    async with api.client() as http:
        started = await http.post(
            "/releases", json={"plan": plan}, headers=governance.headers("alice")
        )
        assert started.status_code == 201, started.text
        release_id = str(started.json()["release_id"])
        await wait_for_status(
            http, release_id, governance.headers("alice"), waiting_at("pilot"), timeout=90
        )
    return release_id


def check_page(browser: Browser) -> None:
    errors = browser.unexpected_console_errors()
    assert not errors, f"the page logged console errors: {errors}"
    fetches = [r for r in browser.requests if r.resource_type in ("xhr", "fetch")]
    assert fetches, "the page made no requests of its own"
    for request in fetches:
        headers = request.headers
        assert headers.get("x-request-id"), f"{request.method} {request.url} without X-Request-Id"
        assert headers.get("x-trace-id"), f"{request.method} {request.url} without X-Trace-Id"
    ids = [r.headers["x-request-id"] for r in fetches]
    assert len(set(ids)) == len(ids), "a request id was used twice"


async def test_a_committee_member_approves_and_the_stage_advances_without_a_reload(
    dashboard_api: ServedApi, governance: Governance, desk: Any, worker: None, browser: Any
) -> None:
    # pilot also measures a metric check and runs the contract gate: a chart and report links
    release_id = await start_release(
        dashboard_api,
        governance,
        desk,
        "15.1.0",
        checks=[
            {"name": "channel-down", "template": "im-channel-down", "interval": "1s", "count": 3}
        ],
        contract={"max_examples": 3, "seed": 15, "time_budget": "2m"},
    )
    b: Browser = await browser()
    await b.sign_in(dashboard_api.url, governance.tokens["carol"])
    await b.page.wait_for_selector(f'tr[data-release="{release_id}"]')
    assert "waiting_approval" in await b.page.inner_text(f'tr[data-release="{release_id}"]')
    await b.screenshot("releases")

    await b.page.click(f'a[href="/ui/releases/{release_id}"]')
    await b.page.wait_for_selector("#approve")
    assert await b.page.get_attribute("#stage-pilot", "data-state") == "waiting_approval"
    pilot = await b.page.inner_text("#stage-pilot")
    assert "channel-down >= 1" in pilot and "JSON report" in pilot and "JUnit report" in pilot
    assert await b.page.query_selector("#stage-pilot svg.chart circle.ok") is not None
    report = await b.page.request.get(
        f"{dashboard_api.url}/ui/releases/{release_id}/contract/pilot/report.json"
    )
    assert report.status == 200 and await report.json()
    # the go/no-go the committee decides on, built before anyone may approve
    verdict = await b.page.inner_text("#go-no-go-pilot")
    assert "readiness" in verdict and "/100" in verdict, verdict
    gonogo = await b.page.request.get(
        f"{dashboard_api.url}/ui/releases/{release_id}/reports/go-no-go?stage=pilot"
    )
    assert gonogo.status == 200 and "readiness" in (await gonogo.text()).lower()
    trace = await b.page.get_attribute("#trace-link", "href")
    assert trace and trace.startswith("/ui/traces/")
    await b.screenshot("release-waiting")

    await b.page.evaluate("window.__notReloaded = true")
    await b.page.fill('input[name="comment"]', "evidence reviewed")
    await b.page.click("#approve")
    await b.page.wait_for_function(
        "document.querySelector('#stage-pilot').dataset.state === 'promoted'", timeout=30_000
    )
    assert await b.page.evaluate("window.__notReloaded === true"), "the page was reloaded"
    await b.page.wait_for_selector("#flash .flash.ok")
    assert "carol approved" in await b.page.inner_text("#stage-pilot")
    assert "evidence reviewed" in await b.page.inner_text("#stage-pilot")
    await b.page.wait_for_function(
        "document.querySelector('#release-state, #live') && "
        "document.querySelector('#stage-production').dataset.state === 'promoted'",
        timeout=60_000,
    )
    await b.screenshot("release-promoted")
    await asyncio.sleep(2.5)  # the page keeps polling its cheap fragment (204 while unchanged)
    # the page's requests ran under the release's trace id
    polled = [r for r in b.requests if "/live" in r.url]
    assert len(polled) >= 2 and {r.headers["x-trace-id"] for r in polled} == {
        trace.removeprefix("/ui/traces/")
    }

    # the release links to its chain of events (GET /traces/{trace_id}, warden replay)
    await b.page.click("#trace-link")
    await b.page.wait_for_selector("#trace-verdict", timeout=60_000)
    assert "replays with the current code" in await b.page.inner_text("#trace-verdict")
    assert release_id in await b.page.inner_text("#trace-workflows")
    chain = await b.page.inner_text("#trace-chain")
    assert "release.started" in chain and "signoff.approval" in chain, chain
    await b.screenshot("trace")
    check_page(b)


async def test_the_owner_sees_no_approve_button_and_a_forged_approval_is_refused_and_audited(
    dashboard_api: ServedApi, governance: Governance, desk: Any, worker: None, browser: Any
) -> None:
    release_id = await start_release(dashboard_api, governance, desk, "15.2.0")
    b: Browser = await browser()
    await b.sign_in(dashboard_api.url, governance.tokens["alice"])
    await b.page.goto(f"{dashboard_api.url}/ui/releases/{release_id}")
    await b.page.wait_for_selector("#no-decide")
    assert await b.page.query_selector("#approve") is None
    assert await b.page.query_selector("#reject") is None
    assert "cannot" in (await b.page.inner_text("#no-decide")) or "roles" in (
        await b.page.inner_text("#no-decide")
    )
    assert await b.page.query_selector("#pause") is not None  # a release manager may pause
    await b.screenshot("release-owner")

    csrf = await b.page.get_attribute('input[name="csrf"]', "value")
    url = f"{dashboard_api.url}/ui/releases/{release_id}/approve"
    forged = await b.page.request.post(
        url, form={"stage": "pilot", "comment": "", "csrf": csrf or ""}
    )
    assert forged.status == 403
    assert "may not release.decide" in await forged.text()
    without_csrf = await b.page.request.post(url, form={"stage": "pilot"})
    assert without_csrf.status == 403
    assert "CSRF" in await without_csrf.text()

    async with dashboard_api.client() as http:
        rows = (
            await http.get(
                "/audit/events",
                params={"action": "auth.refused", "releaseId": release_id},
                headers=governance.headers("root"),
            )
        ).json()
        failures = (
            await http.get(
                "/audit/events",
                params={"action": "api.failure", "releaseId": release_id},
                headers=governance.headers("root"),
            )
        ).json()
        status = (
            await http.get(f"/releases/{release_id}", headers=governance.headers("alice"))
        ).json()
    events = rows["events"] if isinstance(rows, dict) else rows
    refused = [e for e in events if e["details"].get("face") == "dashboard"]
    assert {e["userId"] for e in refused} >= {"alice"}
    assert any("CSRF" in e["details"]["reason"] for e in refused)
    assert any(e["details"].get("permission") == "release.decide" for e in refused)
    failed = failures["events"] if isinstance(failures, dict) else failures
    assert {e["details"]["status"] for e in failed} == {403}
    assert all(e["details"]["requestId"] for e in failed)
    assert status["state"] == "waiting_approval"  # nothing was counted
    await asyncio.sleep(1.5)  # the page polls its live fragment meanwhile
    check_page(b)


async def test_a_channel_going_down_turns_its_card_red_and_the_ticker_shows_the_alert(
    dashboard_api: ServedApi, governance: Governance, desk: Any, browser: Any
) -> None:
    b: Browser = await browser()
    await b.sign_in(dashboard_api.url, governance.tokens["oscar"])
    await b.page.goto(f"{dashboard_api.url}/ui/health")
    await b.page.wait_for_selector("#channels-pilot.green", timeout=15_000)
    assert "No active alerts" in await b.page.inner_text("#ticker")
    await b.page.wait_for_selector("#sla-pilot")
    await b.screenshot("health")

    httpx.post(f"{desk.url}/_sim/channels/feishu/down", trust_env=False).raise_for_status()
    try:
        down_at = time.monotonic()
        await b.page.wait_for_selector("#channels-pilot.red", timeout=10_000)
        assert "down" in await b.page.inner_text('#channels-pilot tr[data-channel="feishu"]')
        # the guard's window: im-channel-down holds for 2s here, the page polls every second
        await b.page.wait_for_selector(
            '#ticker .alert[data-check="im-channel-down"]', timeout=10_000
        )
        took = time.monotonic() - down_at
        assert "feishu down in pilot" in await b.page.inner_text("#ticker")
        assert took < 10
        assert "customers cannot reach support" in await b.page.inner_text("#error-events")
        await b.screenshot("health-channel-down")
    finally:
        httpx.post(f"{desk.url}/_sim/channels/feishu/up", trust_env=False).raise_for_status()
    await b.page.wait_for_selector("#channels-pilot.green", timeout=15_000)
    check_page(b)


async def test_a_killed_metrics_source_turns_the_card_red_and_alerts(
    serve_api: Any, governance: Governance, tmp_path: Path, browser: Any
) -> None:
    """The service whose metrics feed a card goes away: nothing to read is not "up"."""
    staging = launcher.SupportDeskProcess(simulate_rps=5, seed=3).start()
    try:
        config = tmp_path / "staging.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "refresh": "500ms",
                    "environments": [
                        {"name": "staging", "base_url": staging.url, "channels": ["wecom"]}
                    ],
                    "cards": {
                        "channel_down": {"template": "im-channel-down", "params": {"for": "2s"}}
                    },
                }
            )
        )
        api: ServedApi = serve_api(GOVERNANCE_FILE=str(governance.path), DASHBOARD_FILE=str(config))
        b: Browser = await browser()
        await b.sign_in(api.url, governance.tokens["oscar"])
        await b.page.goto(f"{api.url}/ui/health")
        await b.page.wait_for_selector("#channels-staging.green", timeout=15_000)
        staging.stop()
        await b.page.wait_for_selector("#channels-staging.red", timeout=10_000)
        assert "no reading" in await b.page.inner_text("#channels-staging")
        await b.page.wait_for_selector(
            '#ticker .alert[data-check="im-channel-down"]', timeout=10_000
        )
        assert "wecom unreadable in staging" in await b.page.inner_text("#ticker")
        check_page(b)
    finally:
        staging.stop()


async def test_no_session_leads_to_sign_in_and_a_bad_token_is_refused_readably(
    dashboard_api: ServedApi, governance: Governance, browser: Any
) -> None:
    b: Browser = await browser()
    for path in ("/ui/releases", "/ui/health", "/ui/releases/release-x-1"):
        await b.page.goto(f"{dashboard_api.url}{path}")
        assert "/ui/signin?next=" in b.page.url, path
        await b.page.wait_for_selector('input[name="token"]')
    b.expect_refusal(401)
    await b.page.fill('input[name="token"]', "wdn_not-a-real-token")
    await b.page.click('button[type="submit"]')
    message = await b.page.inner_text("#signin-message")
    assert message == "Sign-in refused: the token is not valid (unknown or revoked)"
    assert "wdn_not-a-real-token" not in await b.page.content()
    await b.screenshot("signin-refused")

    async with dashboard_api.client() as http:
        # a crafted POST without any session is refused as JSON
        forged = await http.post(
            "/ui/releases/release-x-1/approve",
            data={"stage": "pilot"},
            headers={"Accept": "application/json"},
        )
        assert forged.status_code == 401
        assert forged.json()["error"]["message"]
        rows = (
            await http.get(
                "/audit/events",
                params={"action": "auth.refused"},
                headers=governance.headers("root"),
            )
        ).json()
    events = rows["events"] if isinstance(rows, dict) else rows
    assert any(
        e["details"].get("face") == "dashboard" and "not valid" in e["details"]["reason"]
        for e in events
    )
    # this page only navigated: a document load cannot carry custom headers, so none to check
    assert not b.unexpected_console_errors()


async def test_filters_pages_refusals_and_a_revoked_token_as_a_committee_member_sees_them(
    dashboard_api: ServedApi, governance: Governance, desk: Any, worker: None, browser: Any
) -> None:
    first = await start_release(dashboard_api, governance, desk, "15.3.0")
    second = await start_release(dashboard_api, governance, desk, "15.3.1")
    b: Browser = await browser()
    await b.sign_in(dashboard_api.url, governance.tokens["dave"])

    # filtered by state and service, one a page: the newest first, then the other
    await b.page.goto(
        f"{dashboard_api.url}/ui/releases?service=support-desk&state=waiting_approval&size=1"
    )
    await b.page.wait_for_selector(f'tr[data-release="{second}"]')
    assert await b.page.query_selector(f'tr[data-release="{first}"]') is None
    await b.page.click("#next-page")
    await b.page.wait_for_selector(f'tr[data-release="{first}"]')
    await b.page.goto(f"{dashboard_api.url}/ui/releases?state=promoted")
    await b.page.wait_for_selector("table.releases")
    assert await b.page.query_selector(f'tr[data-release="{first}"]') is None

    # the release's own refusal, as a person reads it
    await b.page.goto(f"{dashboard_api.url}/ui/releases/{first}")
    await b.page.wait_for_selector("#reject")
    b.expect_refusal(409)
    await b.page.click("#reject")
    await b.page.wait_for_selector("#flash .flash.error")
    assert "a rejection needs a comment saying why" in await b.page.inner_text("#flash")
    await b.screenshot("release-refused")
    assert await b.page.get_attribute("#stage-pilot", "data-state") == "waiting_approval"
    decided = [r for r in b.requests if r.method == "POST" and "/releases/" in r.url]
    assert [r.url.rsplit("/", 1)[-1] for r in decided] == ["reject"]  # and nothing else

    # the token is revoked: the page's next poll leads to the sign-in page
    text = governance.path.read_text()
    revoked = text.replace(hash_token(governance.tokens["dave"]), "f" * 64)
    assert revoked != text
    replacement = governance.path.with_suffix(".new")
    replacement.write_text(revoked)
    replacement.replace(governance.path)  # as an editor saves it: never half written
    await b.page.wait_for_url("**/ui/signin?**", timeout=10_000)
    assert "no longer works" in await b.page.inner_text("#signin-message")
    assert f"/ui/releases/{first}" in b.page.url
    check_page(b)


async def test_a_session_survives_an_api_restart(
    serve_api: Any, dashboard_api: ServedApi, governance: Governance
) -> None:
    async with dashboard_api.client() as http:
        signed = await http.post("/ui/signin", data={"token": governance.tokens["oscar"]})
        assert signed.status_code == 303
        cookie = signed.cookies["warden_session"]
        assert "wdn_" not in cookie
        set_cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    dashboard_api.stop()
    again: ServedApi = serve_api(GOVERNANCE_FILE=str(governance.path), SEARCH_ATTRIBUTES="true")
    async with httpx.AsyncClient(base_url=again.url, cookies={"warden_session": cookie}) as http:
        page = await http.get("/ui/releases")
        assert page.status_code == 200
        assert "oscar" in page.text
        tampered = await http.get("/ui/releases", cookies={"warden_session": cookie[:-2] + "xx"})
        assert tampered.status_code == 303
        assert tampered.headers["location"].startswith("/ui/signin")

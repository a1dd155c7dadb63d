"""Smoke checks against a real loopback server: status, body text, unreachable targets."""

from __future__ import annotations

from temporalio.testing import ActivityEnvironment

from activities.smoke import SmokeActivities
from tests.helpers import RecordingServer
from warden.models.smoke import SmokeCheck, SmokeInput


def _handler(
    method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    if path == "/healthz":
        return 200, {}, b'{"status": "ok"}'
    return 404, {}, b"nope"


async def test_smoke_results_say_what_failed() -> None:
    with RecordingServer(_handler) as target:
        checks = [
            SmokeCheck(name="health", path="/healthz", contains='"ok"'),
            SmokeCheck(name="ready", path="/ready"),
            SmokeCheck(name="body", path="/healthz", contains="degraded"),
            SmokeCheck(name="down", path="http://127.0.0.1:9/healthz", timeout=1),
        ]
        report = await ActivityEnvironment().run(
            SmokeActivities().run_smoke_checks,
            SmokeInput(
                release_id="r", stage="dev", base_url=target.url, checks=checks, trace_id="t-9"
            ),
        )
    assert not report.passed
    by_name = {r.name: r for r in report.results}
    assert by_name["health"].ok
    assert by_name["ready"].error == "HTTP 404, expected 200"
    assert by_name["body"].error == "body does not contain 'degraded'"
    assert not by_name["down"].ok and "Connect" in (by_name["down"].error or "")
    assert "ready: HTTP 404" in report.summary()
    assert target.requests[0]["headers"]["X-Trace-Id"] == "t-9"

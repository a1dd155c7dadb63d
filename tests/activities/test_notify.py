"""Notices reach real webhook servers in the formats Slack, Feishu and DingTalk accept, once per key."""

from __future__ import annotations

import json

from temporalio.testing import ActivityEnvironment

from activities.notify import NoticeActivities
from tests.helpers import RecordingServer
from warden.models.notice import Notice
from warden.settings import Settings
from warden.stores.audit import AuditStore


def _notice(key: str = "release-x:run:rollback") -> Notice:
    return Notice(
        key=key,
        title="Rolled back: release-x",
        text="guard tripped",
        severity="critical",
        audience=["operations"],
        release_id="release-x",
        stage="pilot",
        trace_id="trace-1",
    )


async def test_each_format_gets_its_payload_once(settings: Settings) -> None:
    with RecordingServer(lambda *_: (200, {}, b"{}")) as hooks:
        targets = [
            f"{hooks.url}/generic",
            f"slack:{hooks.url}/slack",
            f"feishu:{hooks.url}/feishu",
            f"dingtalk:{hooks.url}/dingtalk",
        ]
        activities = NoticeActivities(targets, AuditStore(settings.audit_url))
        env = ActivityEnvironment()
        first = await env.run(activities.send_notice, _notice())
        again = await env.run(activities.send_notice, _notice())  # a retried activity
    assert first.delivered == 4 and again.delivered == 4
    assert len(hooks.requests) == 4  # not 8: each webhook got the notice once
    bodies = {r["path"]: json.loads(r["body"]) for r in hooks.requests}
    assert (
        bodies["/generic"]["title"] == "Rolled back: release-x"
        and bodies["/generic"]["severity"] == "critical"
    )
    assert "guard tripped" in bodies["/slack"]["text"]
    assert (
        bodies["/feishu"]["msg_type"] == "text"
        and "release-x" in bodies["/feishu"]["content"]["text"]
    )
    assert (
        bodies["/dingtalk"]["msgtype"] == "text"
        and "pilot" in bodies["/dingtalk"]["text"]["content"]
    )
    assert all(r["headers"].get("X-Trace-Id") == "trace-1" for r in hooks.requests)
    assert all(r["headers"].get("X-Request-Id") for r in hooks.requests)


async def test_a_failing_webhook_is_retried_then_reported(settings: Settings) -> None:
    with RecordingServer(lambda *_: (503, {}, b"busy")) as hooks:
        activities = NoticeActivities([f"slack:{hooks.url}/slack"], AuditStore(settings.audit_url))
        env = ActivityEnvironment()
        env.info = env.info.__class__(
            **{**env.info.__dict__, "attempt": 3}
        )  # the last attempt reports
        result = await env.run(activities.send_notice, _notice("k2"))
    assert result.delivered == 0 and result.failed and "503" in result.failed[0]

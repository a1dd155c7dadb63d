"""The dashboard's parts without a browser: sessions, CSRF, error event levels, charts, the
health cards' configuration."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from warden.dashboard.session import Sessions
from warden.dashboard.views import chart
from warden.errors import WardenError
from warden.models.audit import AuditEvent
from warden.models.metrics import MetricCheck
from warden.services.health import DashboardConfig, _baseline, classify, load_config
from warden.settings import Settings


def event(action: str, result: str, **details: object) -> AuditEvent:
    return AuditEvent(
        eventId="e",
        userId="carol",
        action=action,
        entity="x",
        result=result,
        timestamp=datetime.now(UTC),
        releaseId="release-a-1",
        details=dict(details),
    )


def test_a_session_cookie_is_signed_expires_and_never_holds_the_token(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    sessions = Sessions(settings)
    cookie, session = sessions.issue("token", "ab" * 32)
    assert sessions.read(cookie) == session
    assert (tmp_path / "dashboard.key").stat().st_mode & 0o077 == 0
    # the same key after a restart (a new Sessions reads the file)
    assert Sessions(Settings(state_dir=tmp_path)).read(cookie) == session
    body, _, signature = cookie.partition(".")
    assert sessions.read(body + "." + signature[::-1]) is None
    assert sessions.read(body[:-1] + "A." + signature) is None
    assert sessions.read("") is None and sessions.read("garbage") is None
    assert Sessions(Settings(state_dir=tmp_path / "other")).read(cookie) is None
    short = Sessions(Settings(state_dir=tmp_path, dashboard_session_hours=1e-6))
    expired, _ = short.issue("dev", "carol")
    time.sleep(0.01)
    assert short.read(expired) is None


def test_the_csrf_token_belongs_to_one_session(tmp_path: Path) -> None:
    sessions = Sessions(Settings(state_dir=tmp_path))
    _, one = sessions.issue("dev", "carol")
    _, two = sessions.issue("dev", "carol")
    assert sessions.csrf_ok(one, sessions.csrf(one))
    assert not sessions.csrf_ok(one, sessions.csrf(two))
    assert not sessions.csrf_ok(one, None) and not sessions.csrf_ok(one, "")


@pytest.mark.parametrize(
    ("action", "result", "level", "impact"),
    [
        ("auth.refused", "forbidden", "warning", "request refused"),
        ("approve.refused", "refused", "warning", "request refused by the release"),
        ("killswitch.applied", "applied", "error", "flags switched off"),
        ("rollback.started", "started", "error", "rolling back"),
        ("stage.failed", "failed", "error", "gate failed"),
        ("api.failure", "403", "warning", "call failed (403)"),
    ],
)
def test_error_events_have_a_level_an_impact_and_an_actor(
    action: str, result: str, level: str, impact: str
) -> None:
    found = classify(event(action, result, reason="why"))
    assert found is not None
    assert (found.level, found.impact, found.actor) == (level, impact, "carol")


def test_routine_audit_rows_are_not_error_events() -> None:
    assert classify(event("stage.promoted", "promoted")) is None
    assert classify(event("release.started", "started")) is None
    done = classify(event("rollback.completed", "completed", verified=True))
    assert done is not None and done.what == "flags restored (verified)"


def test_a_guard_chart_draws_the_threshold_and_marks_breaches() -> None:
    check = MetricCheck.model_validate({"name": "errors", "template": "external-api-error-rate"})
    now = datetime.now(UTC)
    svg = chart([(now, 0.01), (now + timedelta(seconds=10), 0.2), (now, None)], check)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'class="threshold"' in svg and "threshold 0.05" in svg
    assert svg.count('class="bad"') == 1 and svg.count('class="ok"') == 1
    assert "no measurements yet" in chart([], check)


def test_a_rate_covers_about_one_interval_however_often_it_is_looked_at() -> None:
    check = MetricCheck.model_validate({"name": "x", "template": "latency-p95"})  # every 10s
    now = datetime.now(UTC).timestamp()
    states = [{"at": now - age} for age in (30, 12, 8, 1)]
    chosen = _baseline(states, check, datetime.fromtimestamp(now, UTC))
    assert chosen == {"at": now - 12}
    assert states == [{"at": now - 12}, {"at": now - 8}, {"at": now - 1}]
    young = [{"at": now - 2}, {"at": now - 1}]
    assert _baseline(young, check, datetime.fromtimestamp(now, UTC)) == {"at": now - 2}
    assert _baseline([], check, datetime.fromtimestamp(now, UTC)) is None


def test_the_cards_file_builds_checks_as_the_guards_do(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.yaml"
    path.write_text(
        "environments:\n"
        "  - name: pilot\n"
        "    base_url: http://127.0.0.1:8083\n"
        "    channels: [feishu]\n"
        "cards:\n"
        "  channel_down: {template: im-channel-down, params: {provider: prometheus}}\n"
    )
    config = load_config(path)
    assert [e.name for e in config.environments] == ["pilot"]
    check = config.cards.channel_down.check("x", selector='channel="feishu"')
    assert check.query is not None and 'channel="feishu"' in getattr(check.query, "query", "")
    assert [e.name for e in DashboardConfig().environments] == [
        "dev",
        "staging",
        "pilot",
        "production",
    ]
    path.write_text("cards:\n  channel_down: {template: no-such-template}\n")
    with pytest.raises(WardenError, match="unknown template"):
        load_config(path)
    path.write_text("environments: [{name: pilot, base_url: ftp://x}]\n")
    with pytest.raises(WardenError, match="http"):
        load_config(path)


def test_dev_identity_sign_in_is_marked_not_verified(tmp_path: Path) -> None:
    from warden.api import create_app

    settings = Settings(state_dir=tmp_path, env="dev")
    assert settings.embedded and settings.governance_file is None
    client = TestClient(create_app(settings))
    form = client.get("/ui/signin")
    assert "not verified" in form.text and 'name="user"' in form.text
    refused = client.post("/ui/signin", data={"user": "not a name!"}, follow_redirects=False)
    assert refused.status_code == 401 and "Sign-in refused" in refused.text
    signed = client.post(
        "/ui/signin", data={"user": "carol", "next": "/ui/health"}, follow_redirects=False
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/health"
    cookie = signed.cookies["warden_session"]
    session = Sessions(settings).read(cookie)
    assert session is not None and (session.kind, session.subject) == ("dev", "carol")
    # a crafted POST without the CSRF token is refused before anything else happens
    forged = client.post("/ui/releases/release-a-1/pause", headers={"Accept": "application/json"})
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["error"]["message"]

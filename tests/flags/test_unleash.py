"""The unleash backend against a real Unleash server (npm unleash-server over PostgreSQL, on 127.0.0.1)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from tests.harness.unleash import UnleashAdmin, UnleashServer
from tests.helpers import recording_server
from warden.flagstore import FlagBackendError, FlagConfigError, FlagNotFound, build_backend
from warden.flagstore.unleash import UnleashBackend, parse_environment_map
from warden.models.flags import FlagState
from warden.settings import Settings

VOLATILE = ("lastSeenAt", "yes", "no")


def _view(admin: UnleashAdmin, flag: str, environment: str) -> dict[str, Any]:
    """What Unleash holds for a flag in one environment, ids included, usage counters left out."""
    block = admin.environment(flag, environment)
    return {k: v for k, v in block.items() if k not in VOLATILE}


def _owned(admin: UnleashAdmin, flag: str, environment: str, stage: str) -> list[dict[str, Any]]:
    return [
        s
        for s in admin.environment(flag, environment)["strategies"]
        if s.get("title") == f"release-warden:{stage}"
    ]


def _travelled(states: list[FlagState]) -> list[FlagState]:
    """Snapshots reach `restore` through Temporal's JSON payloads."""
    return [FlagState.model_validate_json(s.model_dump_json()) for s in states]


def _internal_users(flag: str) -> dict[str, Any]:
    """A strategy someone else owns: on for two named users, whatever the stage."""
    return {
        "name": "default",
        "title": "internal testers",
        "constraints": [
            {"contextName": "userId", "operator": "IN", "values": ["u-ops-1", "u-ops-2"]}
        ],
        "parameters": {},
    }


def _production_canary(flag: str) -> dict[str, Any]:
    """Another stage's strategy (production), with variants: not pilot's business."""
    return {
        "name": "flexibleRollout",
        "title": "production canary",
        "constraints": [{"contextName": "stage", "operator": "IN", "values": ["production"]}],
        "parameters": {"rollout": "10", "stickiness": "default", "groupId": flag},
        "variants": [
            {
                "name": "short",
                "weight": 500,
                "weightType": "variable",
                "stickiness": "default",
                "payload": {"type": "string", "value": "short answers"},
            },
            {"name": "long", "weight": 500, "weightType": "variable", "stickiness": "default"},
        ],
    }


def test_default_mapping_puts_four_stages_on_two_unleash_environments() -> None:
    assert parse_environment_map(Settings().unleash_environments) == {
        "dev": "development",
        "staging": "development",
        "pilot": "production",
        "production": "production",
    }
    with pytest.raises(FlagConfigError, match="not 'stage environment=Unleash environment'"):
        parse_environment_map("dev=development,pilot")


async def test_ramp_steps_show_in_unleash(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    development_before = _view(unleash_admin, flag_name, "development")
    for percent in (5, 25, 50, 100):
        result = await unleash_backend.set_percent("pilot", flag_name, percent)
        assert result.changed and result.after is not None and result.after.percent == percent
        production = unleash_admin.environment(flag_name, "production")
        assert production["enabled"] is True
        [strategy] = production["strategies"]
        assert strategy["name"] == "flexibleRollout"
        assert strategy["title"] == "release-warden:pilot"
        assert strategy["constraints"] == [
            {"contextName": "stage", "operator": "IN", "values": ["pilot"]}
        ]
        assert strategy["parameters"] == {
            "rollout": str(percent),
            "stickiness": "default",
            "groupId": flag_name,
        }
        assert strategy["disabled"] is False
    assert _view(unleash_admin, flag_name, "development") == development_before
    [state] = await unleash_backend.read("pilot", [flag_name])
    assert (state.exists, state.enabled, state.percent) == (True, True, 100)


async def test_stages_sharing_an_unleash_environment_get_a_strategy_each(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    await unleash_backend.set_percent("dev", flag_name, 100)
    await unleash_backend.set_percent("staging", flag_name, 25)
    development = unleash_admin.environment(flag_name, "development")
    rollouts = {
        s["title"]: (s["constraints"][0]["values"], s["parameters"]["rollout"])
        for s in development["strategies"]
    }
    assert rollouts == {
        "release-warden:dev": (["dev"], "100"),
        "release-warden:staging": (["staging"], "25"),
    }
    dev = await unleash_backend.read("dev", [flag_name])
    staging = await unleash_backend.read("staging", [flag_name])
    assert [(s.percent, s.enabled) for s in dev] == [(100, True)]
    assert [(s.percent, s.enabled) for s in staging] == [(25, True)]
    assert unleash_admin.environment(flag_name, "production")["strategies"] == []


async def test_the_same_step_twice_changes_nothing_the_second_time(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    first = await unleash_backend.set_percent("pilot", flag_name, 25)
    after_first = _view(unleash_admin, flag_name, "production")
    second = await unleash_backend.set_percent("pilot", flag_name, 25)
    assert first.changed and not second.changed
    assert second.before == second.after
    assert _view(unleash_admin, flag_name, "production") == after_first
    # Closing a flag that was never opened in a stage writes nothing either.
    untouched = await unleash_backend.set_percent("production", flag_name, 0)
    assert not untouched.changed
    assert _view(unleash_admin, flag_name, "production") == after_first


async def test_other_strategies_are_left_as_they_are(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    internal = unleash_admin.add_strategy(flag_name, "production", _internal_users(flag_name))
    canary = unleash_admin.add_strategy(flag_name, "production", _production_canary(flag_name))
    unleash_admin.set_enabled(flag_name, "production", True)
    theirs = {s["id"]: s for s in _view(unleash_admin, flag_name, "production")["strategies"]}
    assert set(theirs) == {internal["id"], canary["id"]}

    for percent in (25, 100, 0):
        await unleash_backend.set_percent("pilot", flag_name, percent)
        now = {s["id"]: s for s in _view(unleash_admin, flag_name, "production")["strategies"]}
        assert {k: now[k] for k in theirs} == theirs
        [owned] = _owned(unleash_admin, flag_name, "production", "pilot")
        assert owned["parameters"]["rollout"] == str(percent)

    [pilot] = await unleash_backend.read("pilot", [flag_name])
    [production] = await unleash_backend.read("production", [flag_name])
    assert pilot.definition is not None and production.definition is not None
    # Pilot's state holds what can serve pilot: the unconstrained strategy and its own, not production's.
    assert sorted(s.get("title", "") for s in pilot.definition["strategies"]) == [
        "internal testers",
        "release-warden:pilot",
    ]
    assert sorted(s.get("title", "") for s in production.definition["strategies"]) == [
        "internal testers",
        "production canary",
    ]
    assert (pilot.percent, production.percent) == (0, 10)


async def test_restore_puts_the_stage_back_exactly(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    """A flag with history: an earlier release left pilot at 10% (session stickiness, variants)."""
    unleash_admin.create_flag(flag_name)
    unleash_admin.add_strategy(flag_name, "production", _internal_users(flag_name))
    earlier = unleash_admin.add_strategy(
        flag_name,
        "production",
        {
            "name": "flexibleRollout",
            "title": "release-warden:pilot",
            "constraints": [
                {"contextName": "stage", "operator": "IN", "values": ["pilot"]},
                {
                    "contextName": "region",
                    "operator": "NOT_IN",
                    "values": ["cn-north"],
                    "caseInsensitive": True,
                },
            ],
            "parameters": {"rollout": "10", "stickiness": "sessionId", "groupId": "ai-wave-1"},
            "variants": [
                {
                    "name": "concise",
                    "weight": 1000,
                    "weightType": "variable",
                    "stickiness": "sessionId",
                }
            ],
        },
    )
    unleash_admin.add_strategy(flag_name, "production", _production_canary(flag_name))
    unleash_admin.set_enabled(flag_name, "production", True)
    before = _view(unleash_admin, flag_name, "production")
    snapshots = {
        env: await unleash_backend.read(env, [flag_name]) for env in ("pilot", "production")
    }
    assert snapshots["pilot"][0].percent == 10

    for percent in (50, 100):
        await unleash_backend.set_percent("pilot", flag_name, percent)
    await unleash_backend.set_percent("production", flag_name, 5)
    assert _view(unleash_admin, flag_name, "production") != before

    for env in ("pilot", "production"):
        await unleash_backend.restore(env, _travelled(snapshots[env]))
        assert await unleash_backend.read(env, [flag_name]) == snapshots[env]
    # Updated in place, not re-created: Unleash holds what it held, ids and order included.
    assert _view(unleash_admin, flag_name, "production") == before
    [pilot_strategy] = _owned(unleash_admin, flag_name, "production", "pilot")
    assert pilot_strategy["id"] == earlier["id"]


async def test_restore_switches_a_flag_that_was_off_back_off(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    before = _view(unleash_admin, flag_name, "production")
    snapshot = await unleash_backend.read("pilot", [flag_name])
    assert snapshot[0].enabled is False and snapshot[0].percent == 0
    await unleash_backend.set_percent("pilot", flag_name, 25)
    assert unleash_admin.environment(flag_name, "production")["enabled"] is True
    await unleash_backend.restore("pilot", _travelled(snapshot))
    assert _view(unleash_admin, flag_name, "production") == before
    assert await unleash_backend.read("pilot", [flag_name]) == snapshot


async def test_restore_undoes_changes_others_made_to_the_stage_during_the_release(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    """Rollback means the stage serves what it served before: edits made meanwhile are undone too."""
    unleash_admin.create_flag(flag_name)
    internal = unleash_admin.add_strategy(flag_name, "production", _internal_users(flag_name))
    unleash_admin.set_enabled(flag_name, "production", True)
    snapshot = await unleash_backend.read("pilot", [flag_name])
    await unleash_backend.set_percent("pilot", flag_name, 50)
    # Meanwhile, by hand: the testers' strategy widened, and an extra 100% strategy for pilot.
    edited = {
        **_internal_users(flag_name),
        "constraints": [{"contextName": "userId", "operator": "IN", "values": ["*"]}],
    }
    unleash_admin.update_strategy(flag_name, "production", internal["id"], edited)
    unleash_admin.add_strategy(
        flag_name,
        "production",
        {
            "name": "default",
            "constraints": [{"contextName": "stage", "operator": "IN", "values": ["pilot"]}],
        },
    )
    await unleash_backend.restore("pilot", _travelled(snapshot))
    assert await unleash_backend.read("pilot", [flag_name]) == snapshot
    [strategy] = unleash_admin.environment(flag_name, "production")["strategies"]
    assert strategy["id"] == internal["id"]
    assert strategy["constraints"][0]["values"] == ["u-ops-1", "u-ops-2"]


async def test_restore_recreates_a_strategy_deleted_during_the_release(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    await unleash_backend.set_percent("pilot", flag_name, 30)
    snapshot = await unleash_backend.read("pilot", [flag_name])
    await unleash_backend.set_percent("pilot", flag_name, 60)
    [owned] = _owned(unleash_admin, flag_name, "production", "pilot")
    unleash_admin.add_strategy(flag_name, "production", _production_canary(flag_name))
    unleash_admin.delete_strategy(flag_name, "production", owned["id"])
    await unleash_backend.restore("pilot", _travelled(snapshot))
    assert await unleash_backend.read("pilot", [flag_name]) == snapshot
    [recreated] = _owned(unleash_admin, flag_name, "production", "pilot")
    assert (
        recreated["parameters"]["rollout"] == "30" and recreated["sortOrder"] == owned["sortOrder"]
    )


async def test_missing_flag_is_reported_and_never_created(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    [state] = await unleash_backend.read("pilot", [flag_name])
    assert not state.exists and state.definition is None
    with pytest.raises(FlagNotFound, match=flag_name):
        await unleash_backend.set_percent("pilot", flag_name, 25)
    names = {s.flag for s in await unleash_backend.list_flags("pilot")}
    assert flag_name not in names


async def test_list_flags_shows_every_flag_of_the_project(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    await unleash_backend.set_percent("staging", flag_name, 40)
    listed = {s.flag: s for s in await unleash_backend.list_flags("staging")}
    assert listed[flag_name].percent == 40


async def test_a_stage_without_an_unleash_environment_is_a_configuration_error(
    unleash_backend: UnleashBackend, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    with pytest.raises(FlagConfigError, match="WARDEN_UNLEASH_ENVIRONMENTS"):
        await unleash_backend.set_percent("canary", flag_name, 5)


async def test_a_custom_mapping_and_stage_field(
    unleash_server: UnleashServer, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    backend = UnleashBackend(
        unleash_server.url,
        unleash_server.admin_token,
        environments="canary=production,qa=development",
        stage_field="deployStage",
    )
    try:
        await backend.set_percent("canary", flag_name, 15)
    finally:
        await backend.aclose()
    [strategy] = unleash_admin.environment(flag_name, "production")["strategies"]
    assert strategy["title"] == "release-warden:canary"
    assert strategy["constraints"] == [
        {"contextName": "deployStage", "operator": "IN", "values": ["canary"]}
    ]


async def test_settings_select_the_unleash_backend(
    unleash_server: UnleashServer, unleash_admin: UnleashAdmin, flag_name: str
) -> None:
    unleash_admin.create_flag(flag_name)
    settings = Settings(
        flag_backend="unleash",
        unleash_url=unleash_server.url + "/api/",
        unleash_token=SecretStr(unleash_server.admin_token),
    )
    backend = build_backend(settings)
    try:
        assert isinstance(backend, UnleashBackend)
        [state] = await backend.read("production", [flag_name])
        assert state.exists and not state.enabled
    finally:
        await backend.aclose()


@pytest.mark.parametrize(
    ("url", "token", "project", "match"),
    [
        (None, "x", "default", "WARDEN_UNLEASH_URL"),
        ("http://127.0.0.1:1", None, "default", "WARDEN_UNLEASH_TOKEN"),
        ("SERVER", "*:*.not-the-token-you-are-looking-for", "default", "refused"),
        ("SERVER", "TOKEN", "no-such-project", "no-such-project"),
    ],
)
async def test_configuration_problems_are_configuration_errors_without_secrets(
    unleash_server: UnleashServer, url: str | None, token: str | None, project: str, match: str
) -> None:
    url = unleash_server.url if url == "SERVER" else url
    token = unleash_server.admin_token if token == "TOKEN" else token
    backend = UnleashBackend(url, token, project=project)
    try:
        with pytest.raises(FlagConfigError, match=match) as info:
            await backend.read("pilot", ["ai.solutions"])
    finally:
        await backend.aclose()
    message = str(info.value)
    assert unleash_server.admin_token not in message
    assert "not-the-token-you-are-looking-for" not in message


async def test_a_failing_unleash_is_a_retryable_backend_error() -> None:
    """A real local HTTP server answering 503 stands in for an Unleash that is down or overloaded."""
    token = "*:*.secret-admin-token"

    def unavailable(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        return 503, {"Content-Type": "application/json"}, b'{"message": "database unavailable"}'

    with recording_server(unavailable) as server:
        backend = UnleashBackend(f"http://ops:pa55@127.0.0.1:{server.port}", token)
        try:
            with pytest.raises(FlagBackendError, match="503") as info:
                await backend.set_percent("pilot", "ai.solutions", 25)
        finally:
            await backend.aclose()
    assert not isinstance(info.value, FlagConfigError)
    assert token not in str(info.value) and "pa55" not in str(info.value)
    sent = server.requests[0]["headers"]
    assert sent.get("Authorization") == token and sent.get("X-Request-Id")


async def test_an_unreachable_unleash_is_a_retryable_backend_error() -> None:
    with recording_server() as server:
        port = server.port
    backend = UnleashBackend(f"http://127.0.0.1:{port}", "*:*.secret", timeout_s=2)
    try:
        with pytest.raises(FlagBackendError, match="unreachable") as info:
            await backend.read("pilot", ["ai.solutions"])
    finally:
        await backend.aclose()
    assert "secret" not in str(info.value)

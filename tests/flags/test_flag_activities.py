"""The flag activities (check, snapshot, one step, exact restore) over both real backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.flags import FlagActivities
from tests.harness.unleash import UnleashAdmin, UnleashServer
from tests.helpers import recording_server
from warden.flagstore import FlagBackend
from warden.flagstore.flagd_file import FlagdFileBackend, flag_file, init_flag_file
from warden.flagstore.unleash import UnleashBackend
from warden.models.flags import (
    FlagChange,
    FlagChangeInput,
    FlagPresence,
    FlagsInput,
    FlagSnapshot,
    RestoreInput,
    RestoreReport,
)

ENVIRONMENTS = ["staging", "pilot"]


def _flags_input(flags: list[str]) -> FlagsInput:
    return FlagsInput(
        release_id="release-support-desk-2.4.0",
        environments=ENVIRONMENTS,
        flags=flags,
        trace_id="t-1",
    )


def _change(flag: str, environment: str, percent: int) -> FlagChangeInput:
    return FlagChangeInput(
        release_id="release-support-desk-2.4.0",
        change=FlagChange(flag=flag, environment=environment, percent=percent),
        trace_id="t-1",
    )


class Setup:
    """A backend with the flag `flag` present (at 0%) in staging and pilot, and a way to look at it."""

    def __init__(self, backend: FlagBackend, flag: str, raw: Any) -> None:
        self.backend = backend
        self.flag = flag
        self.raw = raw


@pytest_asyncio.fixture(params=["flagd-file", "unleash"])
async def setup(
    request: pytest.FixtureRequest, tmp_path: Path, flag_name: str
) -> AsyncIterator[Setup]:
    if request.param == "flagd-file":
        directory = tmp_path / "flags"
        for env in ENVIRONMENTS:
            init_flag_file(flag_file(directory, env), {flag_name: 0, "chat.channel.feishu": 100})
        yield Setup(
            FlagdFileBackend(directory),
            flag_name,
            lambda: {env: flag_file(directory, env).read_bytes() for env in ENVIRONMENTS},
        )
        return
    server: UnleashServer = request.getfixturevalue("unleash_server")
    admin: UnleashAdmin = request.getfixturevalue("unleash_admin")
    admin.create_flag(flag_name)
    admin.add_strategy(
        flag_name,
        "production",
        {
            "name": "default",
            "constraints": [{"contextName": "userId", "operator": "IN", "values": ["u-ops-1"]}],
        },
    )
    backend = UnleashBackend(server.url, server.admin_token)

    def raw() -> dict[str, Any]:
        return {
            env: {
                k: v
                for k, v in admin.environment(flag_name, env).items()
                if k not in ("lastSeenAt", "yes", "no")
            }
            for env in ("development", "production")
        }

    yield Setup(backend, flag_name, raw)
    await backend.aclose()


async def test_a_release_round_trip_restores_and_verifies(setup: Setup) -> None:
    activities = FlagActivities(setup.backend)
    env = ActivityEnvironment()
    flags = [setup.flag]
    before = setup.raw()

    presence: list[FlagPresence] = await env.run(
        activities.check_flags, _flags_input([*flags, "nowhere.flag"])
    )
    assert [(p.environment, p.present, p.missing) for p in presence] == [
        (e, flags, ["nowhere.flag"]) for e in ENVIRONMENTS
    ]
    snapshots: list[FlagSnapshot] = await env.run(activities.snapshot_flags, _flags_input(flags))
    assert [s.environment for s in snapshots] == ENVIRONMENTS
    assert all(s.backend == setup.backend.name and s.digest for s in snapshots)

    staged = await env.run(activities.apply_flag_change, _change(setup.flag, "staging", 100))
    for percent in (25, 50):
        first = await env.run(activities.apply_flag_change, _change(setup.flag, "pilot", percent))
        again = await env.run(activities.apply_flag_change, _change(setup.flag, "pilot", percent))
        assert first.changed and not again.changed
        assert again.after is not None and again.after.percent == percent
    assert staged.changed and setup.raw() != before

    # Snapshots are workflow state: they come back through Temporal's JSON payloads.
    travelled = [FlagSnapshot.model_validate_json(s.model_dump_json()) for s in snapshots]
    report: RestoreReport = await env.run(
        activities.restore_flags,
        RestoreInput(
            release_id="release-support-desk-2.4.0",
            snapshots=travelled,
            flags=flags,
            environments=ENVIRONMENTS,
            reason="sign-off rejected",
            trace_id="t-1",
        ),
    )
    assert report.verified and report.mismatches == []
    assert sorted((s.environment, s.percent) for s in report.restored) == [
        ("pilot", 0),
        ("staging", 0),
    ]
    assert setup.raw() == before
    again_snapshots: list[FlagSnapshot] = await env.run(
        activities.snapshot_flags, _flags_input(flags)
    )
    assert [s.digest for s in again_snapshots] == [s.digest for s in snapshots]


async def test_a_missing_flag_fails_the_step_for_good(setup: Setup) -> None:
    activities = FlagActivities(setup.backend)
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(
            activities.apply_flag_change, _change("nowhere.flag", "pilot", 5)
        )
    assert info.value.type == "FlagNotFound" and info.value.non_retryable


async def test_unleash_down_is_retried_and_a_bad_token_is_not(
    unleash_server: UnleashServer,
) -> None:
    """A real local HTTP server answering 503 stands in for a failing Unleash."""

    def unavailable(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        return 503, {"Content-Type": "text/plain"}, b"upstream unavailable"

    env = ActivityEnvironment()
    with recording_server(unavailable) as server:
        down = FlagActivities(UnleashBackend(server.url, "*:*.secret-down"))
        with pytest.raises(ApplicationError) as info:
            await env.run(down.apply_flag_change, _change("ai.solutions", "pilot", 5))
        await down.backend.aclose()
    assert info.value.type == "FlagBackendError" and not info.value.non_retryable
    assert "secret-down" not in str(info.value)

    refused = FlagActivities(UnleashBackend(unleash_server.url, "*:*.wrong-secret"))
    with pytest.raises(ApplicationError) as info:
        await env.run(refused.check_flags, _flags_input(["ai.solutions"]))
    await refused.backend.aclose()
    assert info.value.type == "BackendConfigError" and info.value.non_retryable
    assert "wrong-secret" not in str(info.value) and "WARDEN_UNLEASH_TOKEN" in str(info.value)

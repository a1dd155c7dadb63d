"""`warden flags show` as an operator runs it: read without a workflow when this machine holds
the flag files, every environment there is by default, and a state that agrees with what the
flag serves."""

from __future__ import annotations

import asyncio

from temporalio.testing import WorkflowEnvironment

from tests.cli.conftest import Cli
from warden.settings import Settings


async def _reads(env: WorkflowEnvironment, task_queue: str) -> list[object]:
    query = f"WorkflowType = 'FlagReadWorkflow' AND TaskQueue = '{task_queue}'"
    return [w async for w in env.client.list_workflows(query)]


async def test_flags_show_reads_here_every_environment_there_is(
    cli: Cli, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    made = await cli(
        "flags", "init", "--env", "pilot", "--env", "production", "--flag", "ai.solutions=100"
    )
    assert made.code == 0, made.stderr

    shown = await cli("flags", "show")
    assert shown.code == 0, shown.stderr  # only pilot and production have flag files
    rows = [line.split() for line in shown.stdout.strip().splitlines()[1:]]
    assert rows == [
        ["pilot", "ai.solutions", "on", "100%"],
        ["production", "ai.solutions", "on", "100%"],
    ]

    missing = await cli("flags", "show", "--env", "dev")
    assert missing.code == 2
    [line] = missing.stderr.strip().splitlines()
    assert "no flag file for environment 'dev'" in line
    assert "flag files exist for pilot, production" in line
    assert "`warden flags init --env dev`" in line

    disabled = await cli(
        "flags", "disable", "ai.solutions", "--env", "pilot", "--as", "bob", "--reason", "flapping"
    )
    assert disabled.code == 0, disabled.stderr
    after = await cli("flags", "show", "--env", "pilot")
    assert after.stdout.strip().splitlines()[1].split() == ["pilot", "ai.solutions", "off", "0%"]
    as_json = (await cli("flags", "show", "--env", "pilot", "--json")).json()
    assert as_json[0]["percent"] == 0

    assert await _reads(dev_env, settings.task_queue) == []  # every read so far was local

    remote = await cli("flags", "show", "--via-workers", "--json")
    assert remote.code == 0, remote.stderr
    assert {(s["environment"], s["percent"]) for s in remote.json()} == {
        ("pilot", 0),
        ("production", 100),
    }
    for _ in range(50):
        reads = await _reads(dev_env, settings.task_queue)
        if reads:
            break
        await asyncio.sleep(0.2)
    [read] = reads
    assert read.id.startswith("flags-read-")  # type: ignore[attr-defined]
    assert (await read.memo())["kind"] == "flag-read"  # type: ignore[attr-defined]
    listed = await cli("release", "list", "--json")
    assert all(not r["release_id"].startswith("flags-") for r in listed.json())


async def test_flags_show_without_any_flag_file_says_how_to_make_them(cli: Cli) -> None:
    result = await cli("flags", "show", "--via-workers")
    assert result.code == 2
    [line] = result.stderr.strip().splitlines()
    assert "no flag files in" in line and "warden flags init" in line

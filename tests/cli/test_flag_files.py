"""`warden flags init` and `warden flags add`: flags into existing flag files, nothing else changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from warden.flagstore.flagd_file import flag_file, percent_of


@pytest.fixture
def files_cli(tmp_path: Path) -> Cli:
    """The CLI on its own: flag files need no Temporal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env["WARDEN_STATE_DIR"] = str(tmp_path / "state")
    return Cli(env, tmp_path)


def _flags(cli: Cli, env: str) -> dict[str, dict[str, object]]:
    path = flag_file(Path(cli.env["WARDEN_STATE_DIR"]) / "flags", env)
    return json.loads(path.read_text())["flags"]  # type: ignore[no-any-return]


async def test_init_adds_the_missing_flags_to_existing_files(files_cli: Cli) -> None:
    first = await files_cli("flags", "init", "--flag", "ai.solutions")
    assert first.code == 0, first.stderr
    assert first.stdout.count("created with ai.solutions") == 4
    production_before = _flags(files_cli, "production")["ai.solutions"]

    # the case: the service serves chat.channel.feishu at 100% but no file defines it
    again = await files_cli(
        "flags", "init", "--flag", "chat.channel.feishu=100", "--flag", "ai.solutions=50"
    )
    assert again.code == 0, again.stderr
    lines = again.stdout.strip().splitlines()
    assert len(lines) == 4
    assert all(
        line.endswith(": added chat.channel.feishu; left alone ai.solutions (serves 0%)")
        for line in lines
    ), lines
    for env in ("dev", "staging", "pilot", "production"):
        feishu = _flags(files_cli, env)["chat.channel.feishu"]
        assert percent_of("chat.channel.feishu", feishu) == (True, 100)  # type: ignore[arg-type]
    assert _flags(files_cli, "production")["ai.solutions"] == production_before


async def test_add_puts_one_flag_where_it_is_missing_and_changes_nothing_else(
    files_cli: Cli,
) -> None:
    assert (await files_cli("flags", "init", "--env", "production", "--env", "pilot")).code == 0
    added = await files_cli(
        "flags", "add", "chat.channel.feishu", "--env", "production", "--percent", "100"
    )
    assert added.code == 0, added.stderr
    assert added.stdout.strip().endswith("production.flagd.json: added chat.channel.feishu")
    assert "chat.channel.feishu" not in _flags(files_cli, "pilot")
    twice = await files_cli(
        "flags", "add", "chat.channel.feishu", "--env", "production", "--percent", "0"
    )
    assert twice.code == 0
    assert "left alone chat.channel.feishu (serves 100%)" in twice.stdout

    # one unusable file: refused with one line, and no file is written
    pilot = flag_file(Path(files_cli.env["WARDEN_STATE_DIR"]) / "flags", "pilot")
    production = flag_file(Path(files_cli.env["WARDEN_STATE_DIR"]) / "flags", "production")
    pilot.write_text("not json")
    before = production.read_bytes()
    refused = await files_cli("flags", "add", "x.y", "--env", "production", "--env", "pilot")
    assert refused.code == 2 and refused.stdout == ""
    assert "pilot.flagd.json is not valid JSON" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert production.read_bytes() == before

    for bad in (["x.y"], ["bad key", "--env", "dev"], ["x.y", "--env", "../etc"]):
        result = await files_cli("flags", "add", *bad)
        assert result.code == 2, result.stderr
        assert result.stderr.startswith("warden: error: ") and result.stderr.count("\n") == 1

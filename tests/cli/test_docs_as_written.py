"""The commands docs/runbook.md, docs/api.md and the README show, run as a reader pastes them.

Only the placeholders a page declares itself (`NAME=value` lines) are given this test's
values; everything else runs as written, against a real dev server, a real worker and a real
`warden api`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, Result, cli_plan, warden_api, write_governance
from tests.conftest import free_port
from tests.helpers import RecordingServer
from tests.markdown import ROOT, ShBlock, expected_exit, sh_blocks
from warden.flagstore.flagd_file import flag_file, percent_of


async def sh(
    script: str, env: dict[str, str], cwd: Path, timeout: float = 180, new_session: bool = False
) -> Result:
    """`script` in bash with pipefail, as a reader's shell runs a pasted command, with this
    virtualenv's `warden` and `python` first on PATH (as `. .venv/bin/activate` puts them)."""
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    process = await asyncio.create_subprocess_exec(
        "bash", "-o", "pipefail", "-c", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, cwd=cwd, start_new_session=new_session,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        if new_session:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        await process.wait()
        raise
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def wait_for_state(cli: Cli, release_id: str, state: str) -> dict[str, Any]:
    for _ in range(300):
        status = await cli("release", "status", release_id, "--json")
        assert status.code == 0, status.stderr
        if status.json()["state"] == state:
            return dict(status.json())
        await asyncio.sleep(0.2)
    raise AssertionError(f"{release_id} never reached {state}")


def _flag_percent(path: Path, flag: str) -> int:
    return percent_of(flag, json.loads(path.read_text())["flags"][flag])[1]


# -- docs/runbook.md ------------------------------------------------------------------------


async def test_every_runbook_command_runs_as_written(cli: Cli, target: RecordingServer) -> None:
    blocks = sh_blocks(ROOT / "docs" / "runbook.md")
    declared = blocks[0].declarations()
    assert set(declared) == {"RELEASE", "API"}, "the runbook's placeholders changed"

    # The machine as the README leaves it: flag files that know only ai.solutions.
    assert (await cli("flags", "init", "--flag", "ai.solutions")).code == 0
    flags_dir = Path(cli.env["WARDEN_STATE_DIR"]) / "flags"
    production = flag_file(flags_dir, "production")
    ai_before = json.loads(production.read_text())["flags"]["ai.solutions"]

    # A release that changed flags (waiting at its pilot sign-off) and one that is paused.
    suffix = uuid.uuid4().hex[:8]
    changing = cli_plan(target.url, f"1.5.1-{suffix}", flags=["ai.solutions"])
    for stage in changing["stages"][:2]:
        stage["flags"] = [{"flag": "ai.solutions"}]
    released = f"release-support-desk-1.5.1-{suffix}"
    assert (await cli("release", "start", str(cli.write_plan("a.yaml", changing)))).code == 0
    paused = f"release-support-desk-1.5.2-{suffix}"
    plain = cli_plan(target.url, f"1.5.2-{suffix}")
    assert (await cli("release", "start", str(cli.write_plan("b.yaml", plain)))).code == 0
    assert (await cli("release", "pause", paused, "--as", "bob", "--reason", "freeze")).code == 0
    await wait_for_state(cli, released, "waiting_approval")

    # The kill switch on a flag the file does not define says how to add it.
    refused = await cli(
        "flags", "disable", "chat.channel.feishu", "--env", "production",
        "--as", "bob", "--reason", "feishu gateway down",
    )  # fmt: skip
    assert refused.code == 2
    assert "warden flags add chat.channel.feishu --env production --percent" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr

    governance = cli.workdir / "governance.yaml"
    token = write_governance(governance, {"bob": ["operator"]})["bob"]
    values_by_section: dict[str, dict[str, str]] = {
        "Switch a channel or module off now (kill switch)": {},
        "See what a release changed": {"RELEASE": released},
        "Roll a release back by hand": {"RELEASE": released},
        "A release paused itself": {"RELEASE": paused},
        "Export the audit trail": {},
    }
    outputs: dict[str, list[tuple[str, Result]]] = {}
    async with warden_api(cli, governance) as api_url:
        env = {**cli.env, "WARDEN_TOKEN": token, **declared, "API": api_url}
        for block in blocks[1:]:
            assert block.section in values_by_section, f"no setup for {block.section!r} yet"
            values = values_by_section[block.section]
            assert set(values) <= set(declared), "only the runbook's own placeholders"
            for command in block.commands():
                result = await sh(command, {**env, **values}, cli.workdir)
                assert result.code == expected_exit(command), (
                    f"{command}\nexit {result.code}\n{result.stdout}\n{result.stderr}"
                )
                outputs.setdefault(block.section, []).append((command, result))
    assert set(outputs) == set(values_by_section), "a section's commands did not run"

    # What each section promised happened.
    assert _flag_percent(production, "chat.channel.feishu") == 0
    assert json.loads(production.read_text())["flags"]["ai.solutions"] == ai_before
    kill_switch = outputs["Switch a channel or module off now (kill switch)"]
    assert "added chat.channel.feishu" in kill_switch[0][1].stdout
    assert "100% → 0%" in kill_switch[1][1].stdout

    changed = outputs["See what a release changed"]
    assert "ai.solutions@dev" in changed[1][1].stdout
    assert "flag.changed" in changed[2][1].stdout

    rollback = outputs["Roll a release back by hand"]
    restored = json.loads(rollback[2][1].stdout)
    assert restored["verified"] is True and "dev" in restored["environments"]
    assert '"environment": "dev"' in rollback[3][1].stdout
    assert _flag_percent(flag_file(flags_dir, "dev"), "ai.solutions") == 0

    resumed = outputs["A release paused itself"]
    assert "paused" in resumed[0][1].stdout
    assert (await cli("release", "status", paused, "--json")).json()["paused"] is False
    assert (await cli("release", "abort", paused, "--as", "bob", "--reason", "done")).code == 0

    assert (cli.workdir / "audit-2026-11.csv").read_text().startswith("eventId,")
    exported = (cli.workdir / "audit.csv").read_text()
    assert exported.startswith("eventId,") and "killswitch.applied" in exported


# -- docs/api.md ----------------------------------------------------------------------------


def _api_recipe() -> ShBlock:
    return next(
        b
        for b in sh_blocks(ROOT / "docs" / "api.md")
        if "plan render" in b.text and "POST" in b.text
    )


async def test_api_post_releases_recipe_starts_the_shipped_plan(
    cli: Cli, target: RecordingServer
) -> None:
    recipe = _api_recipe()
    assert "examples/plans/support-desk.yaml" in recipe.text
    assert set(recipe.declarations()) == {"API"}
    governance = cli.workdir / "governance.yaml"
    token = write_governance(governance, {"rita": ["release-manager"]})["rita"]
    # The shipped plan reads its URLs (and version) from the environment, as in CI.
    version = f"1.4.0-{uuid.uuid4().hex[:8]}"
    plan_env = {
        "SUPPORT_DESK_VERSION": version,
        **{f"SUPPORT_DESK_{s}_URL": target.url for s in ("DEV", "STAGING", "PILOT", "PRODUCTION")},
    }
    async with warden_api(cli, governance) as api_url:
        env = {**cli.env, **plan_env, "WARDEN_TOKEN": token}
        result = await sh(recipe.with_values({"API": api_url}), env, ROOT)
    assert result.code == 0, f"{result.stdout}\n{result.stderr}"
    started = json.loads(result.stdout)
    assert started["release_id"] == f"release-support-desk-{version}"
    assert started["trace_id"] == "ci-build-4711" and started["started_by"] == "rita"
    status = (await cli("release", "status", started["release_id"], "--json")).json()
    assert [s["base_url"] for s in status["stages"]] == [target.url] * 4
    await cli("release", "abort", started["release_id"], "--as", "rita", "--reason", "test done")


async def test_plan_render_expands_as_release_start_does(cli: Cli) -> None:
    shipped = str(ROOT / "examples" / "plans" / "support-desk.yaml")
    defaults = await cli("plan", "render", shipped, "--json")
    assert defaults.code == 0, defaults.stderr
    document = defaults.json()
    assert document["version"] == "1.4.0"
    assert document["stages"][0]["base_url"] == "http://127.0.0.1:8081"
    assert "${" not in defaults.stdout

    chosen = await cli(
        "plan", "render", shipped, env={"SUPPORT_DESK_PILOT_URL": "http://127.0.0.1:9"}
    )
    assert chosen.code == 0
    assert 'base_url: "http://127.0.0.1:9"' in chosen.stdout  # the YAML text, comments kept
    assert "# Release plan for the sample support-desk service" in chosen.stdout

    broken = cli.write_plan("broken.yaml", {"service": "x", "version": "${NOPE}"})
    refused = await cli("plan", "render", str(broken), "--json")
    assert refused.code == 2 and refused.stdout == ""
    assert "environment variable NOPE is not set" in refused.stderr
    invalid = cli.write_plan("invalid.yaml", {"service": "x", "version": "1.0.0"})
    refused = await cli("plan", "render", str(invalid), "--json")
    assert refused.code == 2 and refused.stdout == "" and "owner" in refused.stderr


# -- README.md ------------------------------------------------------------------------------

#: The lines that make the virtualenv; this test runs in one already, put first on PATH as
#: activating it would.
VENV_LINES = ("make install", ". .venv/bin/activate")


@pytest.mark.timeout(900)
async def test_readme_your_own_release_runs_as_written(tmp_path: Path) -> None:
    """On a machine with nothing running: the embedded server, worker and sample service all
    start from the README's own commands, and the release is promoted after two approvals."""
    [block] = [b for b in sh_blocks(ROOT / "README.md") if b.section == "Your own release"]
    lines = block.text.splitlines()
    assert [line.split("#")[0].strip() for line in lines[:2]] == list(VENV_LINES)
    script = "\n".join(["set -e -x", *lines[2:]])
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WARDEN_", "SUPPORT_DESK_", "TEMPORAL_"))
    }
    env.update(
        {
            # Only where things are, so this test shares nothing with anything else running:
            "WARDEN_STATE_DIR": str(tmp_path / "state"),
            "WARDEN_DEV_SERVER_PORT": str(free_port()),
            "WARDEN_DEV_SERVER_UI_PORT": str(free_port()),
            **{
                f"SUPPORT_DESK_{s}_URL": f"http://127.0.0.1:{free_port()}"
                for s in ("DEV", "STAGING", "PILOT", "PRODUCTION")
            },
        }
    )
    try:
        result = await sh(script, env, ROOT, timeout=840, new_session=True)
    finally:
        # whatever the script got to, nothing it started outlives the test
        await sh("python -m examples.support_desk stack --stop; warden server stop", env, ROOT)
    assert result.code == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "pilot waits for sign-off (0 of 2 approvals given" in result.stdout
    assert "(2/2 approvals) — stage approved" in result.stdout
    assert "release-support-desk-1.4.0: promoted" in result.stdout

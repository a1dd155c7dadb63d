"""`warden release start` says, before anything changes, which ramp steps a live flag already
serves: the release skips them rather than lowering the flag."""

from __future__ import annotations

import json
import uuid

from tests.cli.conftest import Cli, cli_plan
from tests.helpers import RecordingServer


async def test_start_names_each_live_flag_whose_steps_it_will_skip(
    cli: Cli, target: RecordingServer
) -> None:
    made = await cli("flags", "init", "--flag", "ai.solutions=100", "--env", "pilot")
    assert made.code == 0, made.stderr
    made = await cli("flags", "init", "--flag", "ai.solutions=0", "--env", "dev")
    assert made.code == 0, made.stderr
    version = f"3.0.{uuid.uuid4().hex[:8]}"
    data = cli_plan(target.url, version, flags=["ai.solutions"])
    data["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    data["stages"][2]["flags"] = [{"flag": "ai.solutions", "steps": [5, 25, 50, 100]}]
    plan = cli.write_plan("plan.yaml", data)

    started = await cli("release", "start", str(plan), "--json", "--quiet")
    assert started.code == 0, started.stderr
    warnings = [line for line in started.stderr.splitlines() if "already serves" in line]
    assert warnings == [
        "warden: warning: ai.solutions already serves 100% in pilot: ramp step(s) 5%, 25%, "
        "50%, 100% will be skipped, the flag is not lowered (set `start_over: true` on the ramp "
        "to start it lower)"
    ]  # dev serves 0%: nothing to say about it
    assert json.loads(started.stdout)["warnings"] == [warnings[0].removeprefix("warden: warning: ")]
    await cli("release", "abort", f"release-support-desk-{version}", "--reason", "test over")

    again = f"3.1.{uuid.uuid4().hex[:8]}"
    data["version"] = again
    data["stages"][2]["flags"][0]["start_over"] = True
    plan = cli.write_plan("start-over.yaml", data)
    started = await cli("release", "start", str(plan))
    assert started.code == 0, started.stderr
    assert "already serves" not in started.stderr
    await cli("release", "abort", f"release-support-desk-{again}", "--reason", "test over")

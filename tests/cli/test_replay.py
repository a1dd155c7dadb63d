"""`warden replay`: the chain of one trace id, replayed against the current code."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.cli.changed_workflows import ReadFirstFlagChangeWorkflow
from tests.cli.conftest import Cli, Result, cli_plan
from tests.helpers import RecordingServer
from warden.runtime.worker import worker_options
from warden.settings import Settings
from warden.tracing import otel_trace_id
from workflows import WORKFLOWS


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


async def wait_for_state(cli: Cli, release_id: str, state: str) -> None:
    for _ in range(300):
        status = await cli("release", "status", release_id, "--json")
        if status.code == 0 and status.json()["state"] == state:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{release_id} never reached {state}")


async def replay_trace(cli: Cli, trace: str, count: int, *args: str) -> Result:
    """`warden replay --trace-id`, once visibility lists all `count` workflows of the trace."""
    for _ in range(50):
        result = await cli("replay", "--trace-id", trace, "--json")
        assert result.code in (0, 1, 2) and (result.code == 2 or result.stdout), result
        if result.code in (0, 1) and len(result.json()["workflows"]) >= count:
            break
        await asyncio.sleep(0.2)
    return await cli("replay", "--trace-id", trace, *args)


def ramping(base_url: str, version: str, *, signoff: bool) -> dict[str, Any]:
    plan = cli_plan(base_url, version, flags=["ai.solutions"])
    plan["stages"][0]["flags"] = [{"flag": "ai.solutions"}]
    if not signoff:
        for stage in plan["stages"]:
            stage.pop("signoff", None)
    return plan


async def test_one_trace_promoted_rolled_back_and_kill_switch_in_order(
    cli: Cli, target: RecordingServer
) -> None:
    trace = f"ci-job-{uuid.uuid4().hex[:8]}"  # not 32 hex: WardenTraceId holds its hash
    suffix = uuid.uuid4().hex[:6]
    for flag, envs in (
        ("ai.solutions=0", ("dev", "staging", "pilot")),
        ("ai.solutions=100", ("production",)),
    ):
        made = await cli("flags", "init", "--flag", flag, *(a for e in envs for a in ("--env", e)))
        assert made.code == 0, made.stderr

    promoted = f"release-support-desk-4.0.0-{suffix}"
    plan = cli.write_plan("promoted.yaml", ramping(target.url, f"4.0.0-{suffix}", signoff=False))
    started = await cli("release", "start", str(plan), "--trace-id", trace, "--wait", "-q")
    assert started.code == 0, started.stderr

    rolled_back = f"release-support-desk-4.0.1-{suffix}"
    data = ramping(target.url, f"4.0.1-{suffix}", signoff=True)
    # dev already serves 100% after the first release (that step is skipped): pilot opens to 50%
    data["stages"][2]["flags"] = [{"flag": "ai.solutions", "steps": [50]}]
    plan = cli.write_plan("rejected.yaml", data)
    assert (await cli("release", "start", str(plan), "--trace-id", trace)).code == 0
    await wait_for_state(cli, rolled_back, "waiting_approval")
    rejected = await cli(
        "release", "reject", rolled_back, "--stage", "pilot", "--as", "carol",
        "--comment", "error budget spent",
    )  # fmt: skip
    assert rejected.code == 0, rejected.stderr
    watched = await cli("release", "watch", rolled_back, "--quiet")  # until its result
    assert watched.code == 1 and "rolled_back" in watched.stdout, watched.stderr

    switched = await cli(
        "flags", "disable", "ai.solutions", "--env", "production", "--as", "bob",
        "--reason", "gateway down", "--trace-id", trace,
    )  # fmt: skip
    assert switched.code == 0, switched.stderr

    result = await replay_trace(cli, trace, 3, "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["deterministic"] is True
    assert report["otel_trace_id"] == otel_trace_id(trace)
    kinds = {w["workflow_type"] for w in report["workflows"]}
    assert kinds == {"ReleaseWorkflow", "FlagChangeWorkflow"}
    ids = [w["workflow_id"] for w in report["workflows"]]
    assert ids[:2] == [promoted, rolled_back] and ids[2].startswith("flags-production-")

    chain = report["chain"]
    times = [datetime.fromisoformat(line["at"]) for line in chain]
    assert times == sorted(times)
    assert all(line["trace_id"] == trace for line in chain)
    assert all(line["request_id"] for line in chain if line["source"] == "temporal")

    def first(predicate: Any) -> int:
        return next(i for i, line in enumerate(chain) if predicate(line))

    # Each workflow's story, in order: promoted, then rolled back, then the kill switch.
    promoted_done = first(
        lambda x: (
            x["workflow_id"] == promoted and x["kind"] == "stage" and "promoted" in x["summary"]
        )
    )
    reject_sent = first(lambda x: x["kind"] == "update reject")
    rolled = first(lambda x: x["workflow_id"] == rolled_back and x["kind"] == "rollback.completed")
    switch = first(lambda x: x["kind"] == "killswitch.applied")
    assert promoted_done < reject_sent < rolled < switch
    assert chain[reject_sent]["user"] == "carol"
    assert "error budget spent" in chain[reject_sent]["summary"]
    # Activities with their results, flag changes with before and after, timers, notices.
    assert any(x["kind"] == "apply_flag_change" and "completed" in x["summary"] for x in chain)
    ramp = [x for x in chain if x["kind"] == "flag.changed" and x["workflow_id"] == promoted]
    assert ramp and all("→" in x["summary"] and x["source"] == "flag" for x in ramp)
    assert "ai.solutions@production: 100% → 0%" in chain[switch]["summary"]
    assert chain[switch]["user"] == "bob"
    assert any(x["kind"] == "timer" for x in chain if x["workflow_id"] == rolled_back)
    assert any(x["source"] == "notice" for x in chain)
    starts = [x for x in chain if x["kind"] == "started"]
    assert [x["user"] for x in starts] == ["alice", "alice", "bob"]

    # The same chain as a table and as CSV, each line with its request id and trace id.
    table = await cli("replay", "--trace-id", trace)
    assert table.code == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header[:2] == ["TIME", "SOURCE"] and header[-2:] == ["REQUEST_ID", "TRACE_ID"]
    assert len(table.stdout.strip().splitlines()) == len(chain) + 1
    assert "3 workflow(s) replayed, all deterministic" in table.stderr
    as_csv = await cli("replay", "--trace-id", trace, "--csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == len(chain) and rows[0]["trace_id"] == trace

    # One release, by its id; and the OpenTelemetry form of the trace id finds the same.
    alone = await cli("replay", promoted, "--json")
    assert alone.code == 0, alone.stderr
    assert {x["workflow_id"] for x in alone.json()["chain"]} == {promoted}
    assert any(x["kind"] == "release.started" for x in alone.json()["chain"])
    hashed = await cli("replay", "--trace-id", otel_trace_id(trace), "--json")
    assert [w["workflow_id"] for w in hashed.json()["workflows"]] == ids

    # The deployment check over the namespace, and over the committed histories.
    recent = await cli("replay", "--all", "--since", "10m")
    assert recent.code == 0, recent.stderr
    assert promoted in recent.stdout and rolled_back in recent.stdout
    committed = await cli("replay", "--history", str(HISTORIES), "--csv")
    assert committed.code == 0, committed.stderr
    assert len(committed.stdout.strip().splitlines()) > 20


async def test_changed_workflow_code_exits_1_naming_the_event(
    cli: Cli, dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    """A kill switch recorded by code that read the flag first: today's code diverges at the
    activity the old code scheduled first."""
    trace = uuid.uuid4().hex
    queue = f"changed-{uuid.uuid4().hex[:8]}"
    assert (await cli("flags", "init", "--flag", "ai.solutions")).code == 0
    changed = [w for w in WORKFLOWS if w.__name__ != "FlagChangeWorkflow"]
    changed.append(ReadFirstFlagChangeWorkflow)
    async with AsyncExitStack() as stack:
        options = worker_options(dev_env.client, settings, stack=stack, task_queue=queue)
        async with Worker(dev_env.client, **{**options, "workflows": changed}):
            switched = await cli(
                "flags", "disable", "ai.solutions", "--env", "pilot", "--as", "bob",
                "--reason", "drill", "--trace-id", trace, env={"WARDEN_TASK_QUEUE": queue},
            )  # fmt: skip
            assert switched.code == 0, switched.stderr
    result = await replay_trace(cli, trace, 1)
    assert result.code == 1, result.stderr
    line = next(x for x in result.stderr.splitlines() if "diverged" in x)
    assert "flags-pilot-ai.solutions-" in line and "(FlagChangeWorkflow)" in line
    assert "diverged at event 5 (ACTIVITY_TASK_SCHEDULED)" in line
    report = (await cli("replay", "--trace-id", trace, "--json")).json()
    [workflow] = report["workflows"]
    assert workflow["deterministic"] is False and workflow["event_id"] == 5


async def test_bad_input_is_one_line_and_exit_2(cli: Cli) -> None:
    cases = {
        ("replay", "release-support-desk-0.0.0-nope"): "unknown release",
        (
            "replay",
            "--trace-id",
            uuid.uuid4().hex,
        ): "no release, kill switch or access change carries trace id",
        ("replay", "--trace-id", "has space"): "is not usable",
        ("replay", "--trace-id", "x" * 201): "is not usable",
        ("replay", "--all", "--since", "7x"): "is not a time span",
        ("replay", "--all", "--since", "0d"): "is not a time span",
        ("replay",): "give one of RELEASE_ID, --trace-id T, --all or --history PATH",
        ("replay", "r", "--trace-id", "t"): "not RELEASE_ID and --trace-id",
        ("replay", "--since", "7d", "r"): "--since goes with --all",
        ("replay", "--history", "/nonexistent/histories"): "no such file or directory",
    }
    for args, message in cases.items():
        result = await cli(*args)
        assert result.code == 2, (args, result.stderr)
        assert message in one_line(result), (args, result.stderr)
    remote = await cli("replay", "--trace-id", "t1", env={"WARDEN_API_URL": "http://127.0.0.1:9"})
    assert remote.code == 2
    assert "GET /traces/t1" in one_line(remote)


from pathlib import Path  # noqa: E402

HISTORIES = Path(__file__).parents[1] / "replay" / "histories"

"""`warden` as release managers, committee members and CI use it: exit codes, one-line errors, JSON."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.cli.conftest import Cli, cli_plan, warden_api, write_governance
from tests.helpers import RecordingServer


def _version() -> str:
    return f"2.0.{uuid.uuid4().hex[:8]}"


async def test_plan_validate_and_schema(cli: Cli, target: RecordingServer) -> None:
    good = cli.write_plan("good.yaml", cli_plan(target.url, "1.0.0"))
    result = await cli("plan", "validate", str(good))
    assert result.code == 0, result.stderr
    assert "release-support-desk-1.0.0" in result.stdout

    broken = cli_plan(target.url, "1.0.0")
    broken["stages"][1]["base_url"] = "not a url"
    broken["stages"][2]["surprise"] = True
    broken["stages"].append(dict(broken["stages"][0]))
    bad = cli.write_plan("bad.yaml", broken)
    result = await cli("plan", "validate", str(bad))
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert any(
        "stages.1 (staging).base_url" in line and "not an http(s) URL" in line for line in lines
    )
    assert any("stages.2 (pilot).surprise: unknown key" in line for line in lines)
    assert "Traceback" not in result.stderr and result.stdout == ""

    schema = await cli("plan", "schema")
    assert schema.code == 0
    document = json.loads(schema.stdout)
    assert document["title"] == "Release Warden plan"
    assert {"service", "version", "owner", "stages"} <= set(document["required"])


async def test_release_lifecycle_through_the_cli(cli: Cli, target: RecordingServer) -> None:
    version = _version()
    plan = cli.write_plan("plan.yaml", cli_plan(target.url, version))
    release_id = f"release-support-desk-{version}"

    started = await cli("release", "start", str(plan), "--json")
    assert started.code == 0, started.stderr
    assert started.json()["release_id"] == release_id

    again = await cli("release", "start", str(plan))
    assert again.code == 2
    assert "already running" in again.stderr and len(again.stderr.strip().splitlines()) == 1

    for _ in range(100):
        status = await cli("release", "status", release_id, "--json")
        assert status.code == 0, status.stderr
        if status.json()["state"] == "waiting_approval":
            break
        await asyncio.sleep(0.2)
    assert status.json()["current_stage"] == "pilot"

    outsider = await cli("release", "approve", release_id, "--stage", "pilot", "--as", "mallory")
    assert outsider.code == 2
    assert "mallory is not a member" in outsider.stderr
    own = await cli("release", "approve", release_id, "--stage", "pilot", "--as", "alice")
    assert own.code == 2 and "separation of duties" in own.stderr

    listed = await cli("release", "list", "--json")
    assert listed.code == 0
    row = next(r for r in listed.json() if r["release_id"] == release_id)
    assert (
        row["service"] == "support-desk"
        and row["state"] == "waiting_approval"
        and row["stage"] == "pilot"
    )

    human = await cli("release", "status", release_id)
    assert "waiting_approval" in human.stdout and "pilot" in human.stdout

    waiting = (await cli("release", "status", release_id, "--json")).json()["current_step"]
    assert (
        waiting
        == "waiting for sign-off of pilot: needs 2 approvals from carol, dave, erin (0 so far)"
    )
    first = await cli(
        "release",
        "approve",
        release_id,
        "--stage",
        "pilot",
        "--as",
        "carol",
        "--comment",
        "metrics ok",
    )
    assert first.code == 0, first.stderr
    current = (await cli("release", "status", release_id, "--json")).json()["current_step"]
    assert current.endswith("(1 so far)")  # the step keeps count as approvals arrive
    # The same decision again is counted once (exit 0); a different one is refused (exit 2).
    again = await cli("release", "approve", release_id, "--stage", "pilot", "--as", "carol")
    assert again.code == 0 and "carol already approved this stage; counted once" in again.stdout
    turned = await cli(
        "release", "reject", release_id, "--stage", "pilot", "--as", "carol", "--comment", "no"
    )
    assert turned.code == 2 and len(turned.stderr.strip().splitlines()) == 1
    assert "carol already approved pilot and cannot reject it now" in turned.stderr
    second = await cli(
        "release", "approve", release_id, "--stage", "pilot", "--as", "dave", "--json"
    )
    assert second.code == 0
    assert second.json()["decided"] == "approved"

    watched = await cli("release", "watch", release_id, "--interval", "0.3")
    assert watched.code == 0, watched.stderr
    assert "promoted" in watched.stdout

    final = (await cli("release", "status", release_id, "--json")).json()
    assert final["result"]["outcome"] == "promoted"
    refusals = [e for e in final["timeline"] if e["action"] == "approve.refused"]
    assert {e["user"] for e in refusals} == {"mallory", "alice"}
    [turned_down] = [e for e in final["timeline"] if e["action"] == "reject.refused"]
    assert turned_down["user"] == "carol" and "already approved" in turned_down["message"]
    assert any(
        e["action"] == "signoff.approval" and "counted once" in e["message"]
        for e in final["timeline"]
    )
    assert " UTC" in human.stdout  # times in text output carry their zone


async def test_wait_exits_1_when_the_release_is_rejected(cli: Cli, target: RecordingServer) -> None:
    version = _version()
    plan = cli.write_plan("plan.yaml", cli_plan(target.url, version))
    release_id = f"release-support-desk-{version}"

    async def reject_when_waiting() -> None:
        for _ in range(200):
            result = await cli(
                "release",
                "reject",
                release_id,
                "--stage",
                "pilot",
                "--as",
                "erin",
                "--comment",
                "no",
            )
            if result.code == 0:
                return
            await asyncio.sleep(0.3)
        raise AssertionError("never reached the pilot sign-off")

    rejecter = asyncio.create_task(reject_when_waiting())
    waited = await cli(
        "release", "start", str(plan), "--wait", "--json", "--junit", "checklist.xml"
    )
    await rejecter
    assert waited.code == 1, waited.stderr
    document = waited.json()
    assert document["result"]["outcome"] == "rejected"
    assert document["result"]["failed_stage"] == "pilot"
    junit = (cli.workdir / "checklist.xml").read_text()
    assert "<failure" in junit and "signoff" in junit


async def _approve_when_waiting(cli: Cli, release_id: str, *users: str) -> None:
    for user in users:
        for _ in range(300):
            result = await cli("release", "approve", release_id, "--stage", "pilot", "--as", user)
            if result.code == 0:
                break
            await asyncio.sleep(0.3)
        else:
            raise AssertionError(f"{user} never got to approve: {result.stderr}")


async def test_wait_json_shows_progress_on_stderr_and_one_document_on_stdout(
    cli: Cli, target: RecordingServer
) -> None:
    """CI runs `start --wait --json`: it sees the release move (stderr) and parses the result."""
    version = _version()
    plan = cli.write_plan("plan.yaml", cli_plan(target.url, version))
    release_id = f"release-support-desk-{version}"
    approver = asyncio.create_task(_approve_when_waiting(cli, release_id, "carol", "dave"))
    waited = await cli("release", "start", str(plan), "--wait", "--json")
    await approver
    assert waited.code == 0, waited.stderr
    document = json.loads(waited.stdout)  # the whole of stdout is one JSON document
    assert document["release_id"] == release_id and document["result"]["outcome"] == "promoted"
    progress = waited.stderr.splitlines()
    assert progress[0].startswith(f"started {release_id}")
    for said in (
        "stage dev started",
        "waiting for sign-off of pilot: needs 2 approvals from carol, dave, erin (0 so far)",
        "approval by carol recorded",
        "stage production promoted",
    ):
        assert any(said in line for line in progress), (said, "\n".join(progress))
    # After the progress, the command's warnings: here that the names were only claimed.
    assert progress[-1].startswith("warden: warning: identities are claimed, not verified")
    assert all(line[:2] == "  " and line[10] == "Z" for line in progress[1:-1]), progress

    quiet_version = _version()
    quiet_plan = cli.write_plan("quiet.yaml", cli_plan(target.url, quiet_version))
    quiet_id = f"release-support-desk-{quiet_version}"
    approver = asyncio.create_task(_approve_when_waiting(cli, quiet_id, "erin", "dave"))
    quiet = await cli("release", "start", str(quiet_plan), "--wait", "--json", "--quiet")
    await approver
    # --quiet silences the progress, not the warning that the names were only claimed.
    assert quiet.code == 0 and quiet.stderr.startswith("warden: warning: identities are claimed")
    assert len(quiet.stderr.splitlines()) == 1
    assert json.loads(quiet.stdout)["result"]["outcome"] == "promoted"

    watched = await cli("release", "watch", quiet_id, "--quiet")
    assert watched.code == 0 and "promoted" in watched.stdout
    assert "smoke checks" not in watched.stderr and "stage " not in watched.stderr


async def test_abort_pause_resume_and_bad_requests(cli: Cli, target: RecordingServer) -> None:
    version = _version()
    plan = cli.write_plan("plan.yaml", cli_plan(target.url, version))
    release_id = f"release-support-desk-{version}"
    assert (await cli("release", "start", str(plan))).code == 0

    paused = await cli("release", "pause", release_id, "--as", "bob", "--reason", "change freeze")
    assert paused.code == 0, paused.stderr
    twice = await cli("release", "pause", release_id, "--as", "bob")
    assert twice.code == 2 and "already paused" in twice.stderr
    resumed = await cli("release", "resume", release_id, "--as", "bob")
    assert resumed.code == 0

    no_reason = await cli("release", "abort", release_id, "--as", "bob")
    assert no_reason.code == 2 and "--reason" in no_reason.stderr
    aborted = await cli("release", "abort", release_id, "--as", "bob", "--reason", "wrong build")
    assert aborted.code == 0, aborted.stderr
    watched = await cli("release", "watch", release_id, "--interval", "0.3")
    assert watched.code == 1
    assert "aborted" in watched.stdout

    unknown = await cli("release", "status", "release-nope-0.0.0")
    assert unknown.code == 2 and "unknown release" in unknown.stderr
    ended = await cli("release", "resume", release_id, "--as", "bob")
    assert ended.code == 2 and "already ended" in ended.stderr


async def test_temporal_unreachable_exits_3(cli: Cli) -> None:
    result = await cli(
        "release", "list", env={"WARDEN_TEMPORAL_ADDRESS": "127.0.0.1:9"}, timeout=60
    )
    assert result.code == 3
    assert "not reachable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_warden_api_serves_the_release_a_cli_started(
    cli: Cli, target: RecordingServer
) -> None:
    """`warden api` is the same service as the CLI: it sees the release and takes approvals."""
    import httpx

    version = _version()
    plan = cli.write_plan("plan.yaml", cli_plan(target.url, version))
    release_id = f"release-support-desk-{version}"
    assert (await cli("release", "start", str(plan))).code == 0
    # The API authenticates with tokens from a governance file (only its own process reads it).
    governance = cli.workdir / "governance.yaml"
    token = write_governance(governance, {"carol": ["committee-member:board"]})["carol"]
    async with warden_api(cli, governance) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            as_carol = {"Authorization": f"Bearer {token}"}
            anonymous = await http.get(f"/releases/{release_id}")
            assert (
                anonymous.status_code == 401
                and anonymous.json()["error"]["type"] == "Unauthenticated"
            )
            for _ in range(100):
                got = await http.get(f"/releases/{release_id}", headers=as_carol)
                assert got.status_code == 200, got.text
                if got.json()["state"] == "waiting_approval":
                    break
                await asyncio.sleep(0.2)
            assert got.json()["current_stage"] == "pilot"
            approved = await http.post(
                f"/releases/{release_id}/approve",
                json={"stage": "pilot", "comment": "metrics look fine"},
                headers=as_carol,
            )
            assert approved.status_code == 200, approved.text
            assert approved.json()["approvals"] == 1
            unknown = await http.get("/releases/release-nope-0.0.0", headers=as_carol)
            assert unknown.status_code == 404 and "error" in unknown.json()
    status = await cli("release", "status", release_id, "--json")
    approvals = [
        d["user"]
        for s in status.json()["stages"]
        if s["signoff"]
        for d in s["signoff"]["decisions"]
    ]
    assert approvals == ["carol"]

"""Verified identity on every CLI path: the `warden` executable against Temporal directly, and
through the HTTP API (`WARDEN_API_URL`), with a governance file configured.

For every command that acts, and for each of {a token of a user with the role, a token of a user
without it, an unknown token, another user's token with `--as`, no token}: the exit code, the
audit row (`auth.refused` for every refusal, the action itself as the token's user otherwise), and
that a refused command changed nothing. Real processes: a dev server, a worker, the API served by
uvicorn, the CLI executable.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import ApiFactory, serve_api  # noqa: F401 (fixture)
from tests.cli.conftest import WARDEN, Result, cli_plan
from tests.helpers import RecordingServer
from warden.flagstore.flagd_file import flag_file, init_flag_file
from warden.models.audit import AuditQuery
from warden.runtime.worker import build_worker
from warden.settings import Settings
from warden.stores.audit import AuditStore
from warden.stores.governance import new_token
from workflows.access import AccessChangeWorkflow
from workflows.release import ReleaseWorkflow

PEOPLE: dict[str, list[str]] = {
    "alice": ["release-manager"],
    "bob": ["operator"],
    "carol": ["committee-member:board"],
    "dave": ["committee-member:board"],
    "erin": ["committee-member:board"],
    "victor": ["viewer"],
}
FLAG = "chat.channel.feishu"
#: What each path counted, for the closing summary.
TALLY: dict[str, dict[str, int]] = {}


@dataclass
class Identities:
    tokens: dict[str, str] = field(default_factory=dict)
    path: Path = Path()


@pytest.fixture
def identities(tmp_path: Path) -> Identities:
    found = Identities(path=tmp_path / "governance.yaml")
    users = []
    for name, roles in PEOPLE.items():
        token, digest = new_token()
        found.tokens[name] = token
        users.append({"name": name, "roles": roles, "token_sha256": digest})
    document = {
        "version": "1",
        "access_committee": "board",
        "users": users,
        "committees": [
            {
                "name": "board",
                "members": [{"user": "carol"}, {"user": "dave"}, {"user": "erin"}],
                "quorum": 2,
            }
        ],
    }
    found.path.write_text(yaml.safe_dump(document, sort_keys=False))
    return found


class Shell:
    """The `warden` executable with a base environment; each call adds its own token."""

    def __init__(self, env: dict[str, str], workdir: Path, tokens: dict[str, str]) -> None:
        self.env = env
        self.workdir = workdir
        self.tokens = tokens

    async def run(self, args: list[str], token: str | None) -> Result:
        env = {k: v for k, v in self.env.items() if k != "WARDEN_TOKEN"}
        if token is not None:
            env["WARDEN_TOKEN"] = token
        process = await asyncio.create_subprocess_exec(
            WARDEN,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=self.workdir,
        )
        out, err = await asyncio.wait_for(process.communicate(), 180)
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode())

    async def as_(self, user: str, *args: str) -> Result:
        return await self.run(list(args), self.tokens[user])


@pytest_asyncio.fixture
async def governed(
    dev_env: WorkflowEnvironment, settings: Settings, identities: Identities
) -> AsyncIterator[Settings]:
    """The worker (in this process) reads the governance file, as a team's workers do."""
    governed = settings.model_copy(update={"governance_file": identities.path})
    async with AsyncExitStack() as stack:
        async with build_worker(dev_env.client, governed, stack=stack):
            yield governed


def _base_env(settings: Settings) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env["WARDEN_STATE_DIR"] = str(settings.state_dir)
    return env


@pytest_asyncio.fixture(params=["direct", "api"])
async def shell(
    request: pytest.FixtureRequest,
    dev_env: WorkflowEnvironment,
    governed: Settings,
    identities: Identities,
    serve_api: ApiFactory,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[Shell]:
    """`direct`: the CLI has the governance file and Temporal. `api`: only WARDEN_API_URL and a
    token, as on a laptop; the API next to Temporal has the governance file."""
    env = _base_env(governed)
    if request.param == "direct":
        env.update(
            {
                "WARDEN_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
                "WARDEN_TASK_QUEUE": governed.task_queue,
                "WARDEN_GOVERNANCE_FILE": str(identities.path),
                "WARDEN_SEARCH_ATTRIBUTES": "true",
            }
        )
    else:
        api = serve_api(GOVERNANCE_FILE=str(identities.path), SEARCH_ATTRIBUTES="true")
        env["WARDEN_API_URL"] = api.url
        env["WARDEN_STATE_DIR"] = str(tmp_path / "laptop")  # nothing of the workers' on the laptop
    yield Shell(env, tmp_path, identities.tokens)


@dataclass
class Act:
    """One command that acts: who may, who may not (None: every user may), and what a refusal
    must leave as it was."""

    args: list[str]
    permission: str
    holder: str
    lacking: str | None
    state: Callable[[], Awaitable[Any]]
    takes_as: bool = True


async def _refusals(shell: Shell, act: Act, audit: AuditStore, path: str) -> None:
    """Every way to be refused, at once (none changes anything): exit 2, one line, audited."""
    other = next(u for u in PEOPLE if u not in (act.holder, act.lacking))
    variants: list[tuple[str, list[str], str | None, str, str]] = [
        ("unknown token", act.args, "wdn_" + uuid.uuid4().hex, "unauthenticated", "not valid"),
        ("no token", act.args, None, "unauthenticated", "WARDEN_TOKEN"),
    ]
    if act.takes_as:
        variants.append(
            (
                "another user's token with --as",
                [*act.args, "--as", act.holder],
                shell.tokens[other],
                "unauthenticated",
                f"belongs to {other}",
            )
        )
    if act.lacking is not None:
        variants.append(
            ("token without the role", act.args, shell.tokens[act.lacking], "forbidden", "roles")
        )
    before_state = await act.state()
    before_rows = len(audit.query(AuditQuery(action="auth.refused", limit=100_000)))
    results = await asyncio.gather(*(shell.run(args, token) for _, args, token, _, _ in variants))
    for (what, _, _, _, says), result in zip(variants, results, strict=True):
        label = f"{path}: {' '.join(act.args[:2])} with {what}"
        assert result.code == 2, f"{label}: exit {result.code}\n{result.stderr}"
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("warden: error:"), f"{label}: {lines}"
        assert says in lines[0], f"{label}: {lines[0]}"
        assert "wdn_" not in result.stderr + result.stdout, f"{label}: a token was printed"
        if what == "token without the role":
            assert act.permission in lines[0], f"{label} does not name the permission: {lines[0]}"
    rows = audit.query(AuditQuery(action="auth.refused", limit=100_000))[before_rows:]
    assert sorted(r.result for r in rows) == sorted(v[3] for v in variants), (path, act.args)
    assert all(r.details.get("reason") for r in rows)
    assert await act.state() == before_state, f"{path}: a refused {act.args[:2]} changed something"
    TALLY.setdefault(path, {}).setdefault("refused", 0)
    TALLY[path]["refused"] += len(variants)


async def _rows(audit: AuditStore, query: AuditQuery) -> list[Any]:
    """The rows a workflow writes shortly after it starts (its audit journal writes in batches)."""
    for _ in range(100):
        rows = audit.query(query)
        if rows:
            return rows
        await asyncio.sleep(0.1)
    return []


async def _allowed(shell: Shell, act: Act, path: str) -> Result:
    result = await shell.as_(act.holder, *act.args)
    assert result.code == 0, f"{path}: {act.args} as {act.holder}: {result.stderr}"
    assert "warning" not in result.stderr, result.stderr  # nothing claimed: all verified
    TALLY.setdefault(path, {}).setdefault("allowed", 0)
    TALLY[path]["allowed"] += 1
    return result


async def test_every_acting_command_needs_a_valid_token_with_the_role(
    request: pytest.FixtureRequest,
    shell: Shell,
    dev_env: WorkflowEnvironment,
    governed: Settings,
    target: RecordingServer,
    tmp_path: Path,
) -> None:
    path = request.node.callspec.params["shell"]
    audit = AuditStore(governed.audit_url)
    client = dev_env.client
    version = f"5.0.{uuid.uuid4().hex[:8]}"
    plan_data = cli_plan(target.url, version)
    plan_data["stages"] = plan_data["stages"][:3]  # no production: its gate wants a signed-off file
    plan_data["stages"][2]["signoff"] = {
        "committee": "board",
        "quorum": 2,
        "deadline": "10m",
        "escalate_before": "0s",
    }
    plan = tmp_path / f"plan-{path}.yaml"
    plan.write_text(yaml.safe_dump(plan_data))
    release_id = f"release-support-desk-{version}"
    init_flag_file(flag_file(governed.flags_path, "production"), {FLAG: 100})

    async def release_state() -> Any:
        try:
            status = await client.get_workflow_handle(release_id).query(ReleaseWorkflow.status)
        except Exception:  # not started: that is its state
            return "absent"
        decisions = [
            (d.user, d.approve) for s in status.stages if s.signoff for d in s.signoff.decisions
        ]
        # What a person's request would change (the release moves on by itself meanwhile).
        return (status.paused, status.state.ended, decisions)

    async def access_changes() -> Any:
        return sorted(
            [e.id async for e in client.list_workflows("WorkflowType = 'AccessChangeWorkflow'")]
        )

    async def flag_bytes() -> Any:
        return flag_file(governed.flags_path, "production").read_bytes()

    async def nothing() -> Any:
        return None

    # release start
    start = Act(["release", "start", str(plan)], "release.start", "alice", "victor", release_state)
    await _refusals(shell, start, audit, path)
    await _allowed(shell, start, path)
    rows = await _rows(audit, AuditQuery(releaseId=release_id, action="release.started"))
    assert [(r.userId, r.details["devIdentity"]) for r in rows] == [("alice", False)]

    # pause, resume
    pause = Act(["release", "pause", release_id], "release.pause", "bob", "carol", release_state)
    await _refusals(shell, pause, audit, path)
    await _allowed(shell, pause, path)
    resume = Act(["release", "resume", release_id], "release.resume", "bob", "carol", release_state)
    await _refusals(shell, resume, audit, path)
    await _allowed(shell, resume, path)

    for _ in range(300):
        status = await client.get_workflow_handle(release_id).query(ReleaseWorkflow.status)
        if status.state.value == "waiting_approval":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"{release_id} never waited for sign-off: {status.state}")

    # approve, reject
    approve = Act(
        ["release", "approve", release_id, "--stage", "pilot", "--comment", "ok"],
        "release.decide",
        "carol",
        "bob",
        release_state,
    )
    await _refusals(shell, approve, audit, path)
    await _allowed(shell, approve, path)
    reject = Act(
        ["release", "reject", release_id, "--stage", "pilot", "--comment", "error budget"],
        "release.decide",
        "dave",
        "bob",
        release_state,
    )
    await _refusals(shell, reject, audit, path)
    await _allowed(shell, reject, path)
    status = await client.get_workflow_handle(release_id).query(ReleaseWorkflow.status)
    pilot = next(s for s in status.stages if s.name == "pilot")
    assert pilot.signoff is not None
    assert [(d.user, d.approve, d.dev_identity) for d in pilot.signoff.decisions] == [
        ("carol", True, False),
        ("dave", False, False),
    ]

    # abort, on a second release of the same plan
    plan_data["version"] = version + "-b"
    second = tmp_path / f"plan-{path}-b.yaml"
    second.write_text(yaml.safe_dump(plan_data))
    assert (await shell.as_("alice", "release", "start", str(second))).code == 0
    release_id = f"release-support-desk-{version}-b"
    abort = Act(
        ["release", "abort", release_id, "--reason", "wrong build"],
        "release.abort",
        "bob",
        "victor",
        release_state,
    )
    await _refusals(shell, abort, audit, path)
    await _allowed(shell, abort, path)

    # the kill switch
    kill = Act(
        ["flags", "disable", FLAG, "--env", "production", "--reason", "gateway flapping"],
        "flags.change",
        "bob",
        "alice",
        flag_bytes,
    )
    await _refusals(shell, kill, audit, path)
    await _allowed(shell, kill, path)
    rows = await _rows(audit, AuditQuery(action="killswitch.applied"))
    assert rows[-1].userId == "bob" and rows[-1].details.get("before") == 100

    # access changes and the governance file's sign-off
    ask = Act(
        ["access", "request", "--user", "victor", "--role", "operator", "--reason", "on-call"],
        "access.request",
        "alice",
        None,
        access_changes,
    )
    await _refusals(shell, ask, audit, path)
    change_id = (await _allowed(shell, ask, path)).stdout.strip().splitlines()[0]

    async def approvals() -> Any:
        status = await client.get_workflow_handle(change_id).query(AccessChangeWorkflow.status)
        return status.approvals

    approve_change = Act(
        ["access", "approve", change_id], "access.decide", "carol", "bob", approvals
    )
    await _refusals(shell, approve_change, audit, path)
    await _allowed(shell, approve_change, path)
    assert await approvals() == ["carol"]
    signoff = Act(
        ["governance", "signoff", "--reason", "quarterly review"],
        "access.request",
        "alice",
        None,
        access_changes,
    )
    await _refusals(shell, signoff, audit, path)
    await _allowed(shell, signoff, path)

    # the audit trail's export
    export = Act(
        ["audit", "export", "--csv", "--limit", "5"], "audit.read", "victor", None, nothing
    )
    export.takes_as = False
    await _refusals(shell, export, audit, path)
    exported = await _allowed(shell, export, path)
    assert exported.stdout.startswith("eventId,timestamp,userId")

    counts = TALLY[path]
    print(f"\n{path}: {counts['refused']} refused, {counts['allowed']} allowed")  # noqa: T201

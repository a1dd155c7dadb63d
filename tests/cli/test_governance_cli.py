"""Access changes and the governance view as committee members use them from the CLI: the
outcome of each change, who asked and who approved, and one rule for repeated decisions."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest_asyncio
import yaml
from temporalio.testing import WorkflowEnvironment

from tests.cli.conftest import Cli, Result
from tests.helpers import users_with_tokens
from tests.workflows.test_governance import GOVERNANCE
from warden.models.audit import AuditQuery
from warden.runtime.worker import build_worker
from warden.settings import Settings
from warden.stores.audit import AuditStore


class TokenCli(Cli):
    """The CLI with verified identity: each call carries the token of the user it acts as
    (`--as NAME`, else alice, who asks for the changes)."""

    def __init__(self, env: dict[str, str], workdir: Path, tokens: dict[str, str]) -> None:
        super().__init__(env, workdir)
        self.tokens = tokens

    async def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> Result:
        user = args[args.index("--as") + 1] if "--as" in args else "alice"
        token = {"WARDEN_TOKEN": self.tokens[user]}
        return await super().__call__(*args, env={**token, **(env or {})}, timeout=timeout)


@pytest_asyncio.fixture
async def gov_cli(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> AsyncIterator[Cli]:
    path = tmp_path / "governance.yaml"
    people = {user["name"]: user["roles"] for user in GOVERNANCE["users"]}
    users, tokens = users_with_tokens(people)
    path.write_text(yaml.safe_dump({**GOVERNANCE, "users": users}))
    governed = settings.model_copy(update={"governance_file": path})
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(
        {
            "WARDEN_STATE_DIR": str(settings.state_dir),
            "WARDEN_TASK_QUEUE": settings.task_queue,
            "WARDEN_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "WARDEN_GOVERNANCE_FILE": str(path),
            "WARDEN_USER": "alice",
        }
    )
    async with AsyncExitStack() as stack:
        async with build_worker(dev_env.client, governed, stack=stack):
            yield TokenCli(env, tmp_path, tokens)


async def _request(cli: Cli, *args: str) -> str:
    made = await cli("access", "request", *args, "--as", "alice")
    assert made.code == 0, made.stderr
    change_id = made.stdout.strip()
    for _ in range(100):  # the change reads the governance file before it takes decisions
        status = await cli("access", "status", change_id, "--json")
        if status.code == 0 and status.json()["members"]:
            return change_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{change_id} never became ready")


async def test_repeated_decisions_outcomes_and_the_governance_view(gov_cli: Cli) -> None:
    cli = gov_cli
    grant = await _request(cli, "--user", "grace", "--role", "operator", "--reason", "on-call")

    first = await cli("access", "approve", grant, "--as", "carol")
    assert first.code == 0, first.stderr
    again = await cli("access", "approve", grant, "--as", "carol", "--json")
    assert again.code == 0, again.stderr  # the same decision again: answered, counted once
    assert again.json()["counted"] is False and again.json()["approvals"] == 1
    assert "carol already approved it; counted once" in again.json()["message"]
    turned = await cli("access", "reject", grant, "--as", "carol", "--comment", "no")
    assert turned.code == 2 and len(turned.stderr.strip().splitlines()) == 1
    assert "carol already approved" in turned.stderr and "cannot reject" in turned.stderr
    applied = await cli("access", "approve", grant, "--as", "erin")
    assert applied.code == 0, applied.stderr

    rejected = await _request(cli, "--user", "bob", "--role", "admin", "--reason", "wants it")
    refused = await cli("access", "reject", rejected, "--as", "dave", "--comment", "not needed")
    assert refused.code == 0, refused.stderr
    waiting = await _request(
        cli, "--user", "grace", "--role", "viewer", "--revoke", "--reason", "x"
    )

    for _ in range(100):
        listed = await cli("access", "list", "--json")
        outcomes = {row["change_id"]: row["outcome"] for row in listed.json()}
        if outcomes.get(grant) == "applied" and outcomes.get(rejected) == "rejected":
            break
        await asyncio.sleep(0.2)
    assert outcomes[grant] == "applied"
    assert outcomes[rejected] == "rejected"
    assert outcomes[waiting] == "waiting"
    table = (await cli("access", "list")).stdout
    assert "OUTCOME" in table and "completed" not in table
    assert any(grant in line and "applied" in line for line in table.splitlines())

    view = await cli("governance", "show", "--json")
    assert view.code == 0, view.stderr
    [given] = view.json()["grants"]
    assert (given["user"], given["role"], given["grant"]) == ("grace", "operator", True)
    assert given["requested_by"] == "alice" and given["approved_by"] == ["carol", "erin"]
    assert given["change_id"] == grant and given["applied_at"]
    text = (await cli("governance", "show")).stdout
    line = next(line for line in text.splitlines() if grant in line)
    assert "grace" in line and "grant operator" in line and "carol, erin" in line
    assert "UTC" in line

    store = AuditStore(f"sqlite:///{cli.env['WARDEN_STATE_DIR']}/audit.db")
    try:
        trail = [
            (e.action, e.userId, e.result)
            for e in store.query(AuditQuery(limit=1000))
            if e.entity == f"access:{grant}"
        ]
    finally:
        store.close()
    assert ("access.approval", "carol", "duplicate") in trail
    assert ("access.reject.refused", "carol", "refused") in trail
    assert trail.count(("access.approval", "carol", "accepted")) == 1


async def test_a_governance_signoff_shows_who_asked_and_approved(gov_cli: Cli) -> None:
    cli = gov_cli
    unsigned = await cli("governance", "show")
    assert "NOT signed off" in unsigned.stdout
    asked = await cli("governance", "signoff", "--reason", "quarterly review", "--as", "alice")
    change_id = asked.stdout.strip()
    for _ in range(100):
        status = await cli("access", "status", change_id, "--json")
        if status.code == 0 and status.json()["members"]:
            break
        await asyncio.sleep(0.1)
    for member in ("dave", "frank"):
        assert (await cli("access", "approve", change_id, "--as", member)).code == 0
    for _ in range(100):
        view = await cli("governance", "show", "--json")
        if view.json()["signoff"]:
            break
        await asyncio.sleep(0.2)
    signoff = view.json()["signoff"]
    assert signoff["requested_by"] == "alice" and signoff["approved_by"] == ["dave", "frank"]
    assert signoff["change_id"] == change_id and signoff["signed_at"]
    text = (await cli("governance", "show")).stdout
    assert "requested by alice; approved by dave, frank; signed off 20" in text
    assert f"change {change_id}" in text and " UTC" in text


async def test_a_role_error_lists_the_roles(gov_cli: Cli) -> None:
    result = await gov_cli(
        "access", "request", "--user", "grace", "--role", "superuser", "--reason", "x"
    )
    assert result.code == 2
    [line] = result.stderr.strip().splitlines()
    assert (
        "--role: unknown role 'superuser'; roles: release-manager, operator, viewer, admin" in line
    )
    assert "committee-member:<committee>" in line and "^(" not in line

"""Determinism: every committed history replays against today's workflow code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from warden.runtime.worker import workflow_runner
from warden.settings import Settings
from workflows import WORKFLOWS

HERE = Path(__file__).parent / "histories"
#: The workflow id a history was recorded under, where it matters (proofs name their workflow);
#: `warden replay --history` reads the same index.
WORKFLOW_IDS: dict[str, str] = json.loads((HERE / "workflow_ids.json").read_text())
HISTORIES = sorted(p for p in HERE.glob("*.json") if p.name != "workflow_ids.json")


def test_every_workflow_type_has_a_history() -> None:
    types = set()
    for path in HISTORIES:
        first = json.loads(path.read_text())["events"][0]
        types.add(first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])
    assert types == {w.__name__ for w in WORKFLOWS} - {"FlagReadWorkflow"}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        # Each run imports the workflow modules afresh, and the sandbox checks what they call.
        workflow_runner=workflow_runner(Settings(workflow_sandbox="isolated")),
    )
    history = WorkflowHistory.from_json(WORKFLOW_IDS.get(path.stem, path.stem), path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"

"""Record the committed replay histories: `python -m tests.replay.record [scenario ...]`.

Each scenario runs on the time-skipping test server with the real worker; a scenario with
scripted metrics gets `run_checks` from a MetricActivities on a scripted provider and a
virtual clock instead of the configured providers.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import yaml
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.metrics import ManualClock, MetricActivities
from tests.helpers import RecordingServer
from tests.metrics.support import ScriptedProvider
from tests.replay.scenarios import SCENARIOS, Scenario
from tests.workflows.test_governance import GOVERNANCE
from warden.runtime.devserver import find_binary
from warden.runtime.worker import build_worker
from warden.settings import Settings

HISTORIES = Path(__file__).parent / "histories"
#: The workflow id each history was recorded under (a proof names the workflow it is for).
WORKFLOW_IDS = Path(__file__).parent / "histories" / "workflow_ids.json"


def overrides(scenario: Scenario) -> list[Any]:
    """Scripted metric answers in place of `run_checks`, for the scenarios that have them."""
    if scenario.metrics is None:
        return []
    provider = ScriptedProvider({name: list(answers) for name, answers in scenario.metrics.items()})
    return [MetricActivities({"prometheus": provider}, clock=ManualClock()).run_checks]


async def main(names: list[str]) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(find_binary("temporal-test-server")),
    )
    try:
        with tempfile.TemporaryDirectory() as tmp, RecordingServer() as target:
            governance = Path(tmp) / "governance.yaml"
            governance.write_text(yaml.safe_dump(GOVERNANCE))
            for name in names or list(SCENARIOS):
                scenario = SCENARIOS[name]
                settings = Settings(
                    state_dir=Path(tmp) / name,
                    governance_file=governance if scenario.governed else None,
                    webhook_urls=[],
                    task_queue=f"replay-{name}",
                    search_attributes=False,
                )
                async with AsyncExitStack() as stack:
                    worker = build_worker(
                        env.client,
                        settings,
                        overrides=overrides(scenario),
                        stack=stack,
                    )
                    async with worker:
                        handle = await scenario.run(env, settings, settings.task_queue, target.url)
                        history = await handle.fetch_history()
                HISTORIES.mkdir(exist_ok=True)
                (HISTORIES / f"{name}.json").write_text(history.to_json())
                ids = json.loads(WORKFLOW_IDS.read_text()) if WORKFLOW_IDS.exists() else {}
                ids[name] = handle.id
                WORKFLOW_IDS.write_text(json.dumps(dict(sorted(ids.items())), indent=2) + "\n")
                print(f"{name}: {len(history.events)} events → {HISTORIES / (name + '.json')}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

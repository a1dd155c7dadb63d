"""Record the committed replay histories: `python -m tests.replay.record [scenario ...]`."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

import yaml
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.helpers import RecordingServer
from tests.replay.scenarios import SCENARIOS
from tests.workflows.test_governance import GOVERNANCE
from warden.devserver import find_binary
from warden.settings import Settings
from worker import build_worker

HISTORIES = Path(__file__).parent / "histories"


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
                settings = Settings(
                    state_dir=Path(tmp) / name,
                    governance_file=governance if name.startswith("access") else None,
                    webhook_urls=[],
                    task_queue=f"replay-{name}",
                )
                async with AsyncExitStack() as stack:
                    async with build_worker(env.client, settings, stack=stack):
                        handle = await SCENARIOS[name](
                            env, settings, settings.task_queue, target.url
                        )
                        history = await handle.fetch_history()
                HISTORIES.mkdir(exist_ok=True)
                (HISTORIES / f"{name}.json").write_text(history.to_json())
                print(f"{name}: {len(history.events)} events → {HISTORIES / (name + '.json')}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

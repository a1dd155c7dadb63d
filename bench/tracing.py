"""Tracing: the overhead benchmark's release with OpenTelemetry off and on.

The release of `bench.overhead` (four stages, one loopback smoke check each) and its bare
workflow, on one dev server, in this process. Off: a client and worker as `OTEL_*` unset leaves
them (no interceptor, no instrumented HTTP client). On: `warden.tracing.setup` with
`OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a loopback OTLP/HTTP receiver (`tests.harness.otlp`,
as its own process),
a client carrying the SDK's `TracingInterceptor`, and a worker built on it, each release started
in its own trace (as `--trace-id` does), so every workflow, activity and HTTP call is a span,
batched and exported. Both workers run at once on their own task queues; runs interleave
off/on/bare. Target: on / off ≤ 1.05 (release p50).

    .venv/bin/python -m bench.tracing [--runs 30] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

from bench.common import (
    ROOT,
    BenchResult,
    DevServer,
    LoopbackService,
    Verdict,
    bench_settings,
    free_port,
    ms,
    percentile,
    ratio,
    release_worker,
    stop_on_sigterm,
    stop_process,
)
from bench.overhead import BareStagedWorkflow, Runner

TARGET = 1.05


class TracedRunner(Runner):
    """Each release in a trace of its own, as a start request with a trace id begins one."""

    async def release(self) -> float:
        from warden import tracing

        with tracing.in_trace(uuid.uuid4().hex):
            return await super().release()


async def run(quick: bool = False, runs: int | None = None) -> BenchResult:
    import httpx

    from warden import tracing

    runs = runs or (10 if quick else 30)
    began = time.monotonic()
    if tracing.enabled():
        raise RuntimeError("tracing is already on in this process; run the benchmark alone")
    port = free_port()
    receiver_url = f"http://127.0.0.1:{port}"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.otlp", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"{receiver_url}/count", timeout=1)
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        times, spans, exports = await _measure(runs, receiver_url)
    finally:
        stop_process(receiver)
    return _result(runs, times, spans, exports, began)


async def _measure(runs: int, receiver_url: str) -> tuple[dict[str, list[float]], int, int]:
    import httpx
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from warden import tracing

    with (
        tempfile.TemporaryDirectory(prefix="warden-bench-tracing-") as tmp,
        LoopbackService() as service,
    ):
        async with DevServer() as server, AsyncExitStack() as stack:
            plain = await server.client()
            off_queue = f"bench-tracing-off-{uuid.uuid4().hex[:8]}"
            off_settings = bench_settings(Path(tmp) / "off", off_queue, server.address)
            off_worker = release_worker(
                plain,
                off_settings,
                task_queue=off_queue,
                extra_workflows=[BareStagedWorkflow],
                stack=stack,
            )
            await stack.enter_async_context(off_worker)  # built before tracing is set up

            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver_url
            os.environ.setdefault("OTEL_SERVICE_NAME", "release-warden-bench")
            try:
                assert tracing.setup("release-warden-bench")
            finally:
                os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
            traced = await Client.connect(
                server.address,
                namespace="default",
                data_converter=pydantic_data_converter,
                interceptors=tracing.temporal_interceptors(),
            )
            on_queue = f"bench-tracing-on-{uuid.uuid4().hex[:8]}"
            on_settings = bench_settings(Path(tmp) / "on", on_queue, server.address)
            on_worker = release_worker(traced, on_settings, task_queue=on_queue, stack=stack)
            await stack.enter_async_context(on_worker)

            off = Runner(plain, off_queue, service.url)
            on = TracedRunner(traced, on_queue, service.url)
            for _ in range(3):  # warm-up: imports, sandbox, SQLite, connections, exporter
                await off.release()
                await on.release()
                await off.bare()
            times: dict[str, list[float]] = {"off": [], "on": [], "bare": []}
            for i in range(runs):
                order = ("off", "on", "bare") if i % 2 == 0 else ("on", "bare", "off")
                for kind in order:
                    if kind == "off":
                        times[kind].append(await off.release())
                    elif kind == "on":
                        times[kind].append(await on.release())
                    else:
                        times[kind].append(await off.bare())
            tracing.flush()
            count = json.loads(httpx.get(f"{receiver_url}/count", timeout=5).text)
    return times, int(count["spans"]), int(count["requests"])


def _result(
    runs: int, times: dict[str, list[float]], spans: int, exports: int, began: float
) -> BenchResult:
    p50 = {k: percentile(v, 0.5) for k, v in times.items()}
    on_off = ratio(p50["on"], p50["off"])
    result = BenchResult(
        name="tracing",
        title="Tracing: the overhead benchmark's release with OpenTelemetry off and on",
        measures=(
            "Wall time from `start_workflow` to the result at the client for the release of "
            "`bench.overhead` (four stages, one loopback smoke check each) with tracing off (no "
            "`OTEL_*`: no interceptor, no instrumented HTTP client) and on (OTLP/HTTP export to a "
            "loopback receiver, `TracingInterceptor` on the client and worker, each release in "
            f"its own trace), and the bare workflow; {runs} sequential runs of each, interleaved, "
            "one dev server, both workers in this process."
        ),
        headers=["workload", "p50", "mean", "overhead ratio (p50 / bare p50)"],
    )
    for kind, label in (("off", "release, tracing off"), ("on", "release, tracing on"), ("bare", "bare workflow")):  # fmt: skip
        result.rows.append(
            [
                label,
                ms(p50[kind]),
                ms(statistics.fmean(times[kind])),
                f"{ratio(p50[kind], p50['bare']):.2f}",
            ]
        )
    result.verdicts.append(
        Verdict("release p50, tracing on / off", f"{on_off:.3f}", f"≤ {TARGET}", on_off <= TARGET)
    )
    result.notes.append(
        f"The receiver got {spans} spans in {exports} export requests "
        f"(about {spans / max(1, runs + 3):.0f} spans per traced release)."
    )
    result.raw = {"times": times, "spans": spans}
    result.seconds = time.monotonic() - began
    return result


def cli() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--runs", type=int, default=None, help="sequential runs of each (default 30)"
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(asyncio.run(run(quick=args.quick, runs=args.runs)).text())


if __name__ == "__main__":
    cli()

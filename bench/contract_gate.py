"""Contract gate vs. plain `st run`: wall time of the same contract run, same service, same seed.

    .venv/bin/python -m bench.contract_gate [--max-examples 25] [--seed 7] [--repeat 3] [--build good]

Starts one Support Desk (good build, `ai.solutions` on so its new path is exercised), then
alternates the two runners `--repeat` times: the gate as a Temporal activity (spec fetch,
validation, schemathesis in-process, JSON + JUnit reports) and `st run --checks all` with the
same max examples and seed in a scratch directory. Prints each time, the medians and their ratio
(target: gate / st <= 1.1).

Then the fidelity comparison (skip it with `--no-fidelity`): for the sample service and three
third-party documents served by their own apps (httpbin's Swagger 2.0, Flask-AppBuilder's
OpenAPI 3.0, Piccolo Admin's OpenAPI 3.1; see tests/contract/apps), the gate and the `st run`
command its report gives, and whether their failure sets and verdicts are equal. It only
reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.contract import GATE_SCHEMATHESIS_TOML, ContractActivities
from examples.support_desk.flags import AI_SOLUTIONS, default_flags
from examples.support_desk.launcher import SupportDeskProcess
from warden.flagstore.flagd_file import init_flag_file
from warden.models.contract import ContractInput, ContractReport, ContractSpec, HeaderValue
from warden.settings import Settings


def run_gate(
    settings: Settings, base_url: str, max_examples: int, seed: int
) -> tuple[float, ContractReport]:
    spec = ContractSpec(max_examples=max_examples, seed=seed, time_budget="30m")
    input = ContractInput(
        release_id="bench", stage="dev", base_url=base_url, spec=spec, trace_id="bench"
    )
    started = time.perf_counter()
    report: ContractReport = asyncio.run(
        ActivityEnvironment().run(ContractActivities(settings).run_contract_tests, input)
    )
    return time.perf_counter() - started, report


def run_st(workdir: Path, base_url: str, max_examples: int, seed: int) -> tuple[float, int]:
    st = Path(sys.executable).parent / "st"
    command = [
        str(st),
        "--config-file",
        str(workdir / "schemathesis.toml"),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--no-color",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.contract_gate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--build", choices=["good", "bad"], default="good")
    parser.add_argument("--no-fidelity", action="store_true", help="only the wall-time comparison")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-contract-") as scratch:
        workdir = Path(scratch)
        # The settings the gate gives schemathesis: no failure cache, no example database, ...
        (workdir / "schemathesis.toml").write_text(GATE_SCHEMATHESIS_TOML)
        flags = workdir / "dev.flagd.json"
        init_flag_file(flags, {**default_flags(), AI_SOLUTIONS: 100})
        settings = Settings(state_dir=workdir / "state", artifacts_dir=workdir / "artifacts")
        gate_times: list[float] = []
        st_times: list[float] = []
        with SupportDeskProcess(flags_file=flags, build=args.build) as desk:
            print(
                f"support desk ({args.build} build) at {desk.url}; max_examples={args.max_examples} seed={args.seed}"
            )
            run_gate(settings, desk.url, 1, args.seed)  # warm-up: imports and first connection
            for round_ in range(1, args.repeat + 1):
                order = ("gate", "st") if round_ % 2 else ("st", "gate")
                for runner in order:
                    if runner == "gate":
                        seconds, report = run_gate(settings, desk.url, args.max_examples, args.seed)
                        gate_times.append(seconds)
                        print(
                            f"round {round_}  gate    {seconds:7.2f}s  "
                            f"{'passed' if report.passed else 'failed'}, {report.test_cases} cases"
                        )
                    else:
                        seconds, code = run_st(workdir, desk.url, args.max_examples, args.seed)
                        st_times.append(seconds)
                        print(f"round {round_}  st run  {seconds:7.2f}s  exit {code}")
        gate, st = statistics.median(gate_times), statistics.median(st_times)
        print(
            f"median  gate {gate:.2f}s  st run {st:.2f}s  ratio gate/st {gate / st:.2f} (target <= 1.10)"
        )
        if not args.no_fidelity:
            fidelity(workdir, settings, flags, args.seed)
    return 0


def fidelity(workdir: Path, settings: Settings, flags: Path, seed: int) -> None:
    """The gate and `st run` on each document: failure sets and verdicts equal, yes or no."""
    from tests.contract.apps import AppProcess
    from tests.contract.fidelity import compare
    from tests.contract.test_contract_fidelity import HTTPBIN_FAILING

    print("fidelity: gate vs st run, same document, operations, examples, seed and checks")

    def show(name: str, base_url: str, spec: ContractSpec) -> None:
        comparison = asyncio.run(compare(name, settings, base_url, spec, workdir / f"st-{name}"))
        print(f"  {comparison.describe()}")

    with SupportDeskProcess(flags_file=flags, build="bad") as desk:
        show("support-desk (bad build)", desk.url, ContractSpec(max_examples=5, seed=seed))
    with AppProcess("httpbin", workdir / "httpbin") as app:
        spec = ContractSpec(
            openapi=app.app.document, max_examples=5, seed=seed, include=HTTPBIN_FAILING
        )
        show("httpbin (Swagger 2.0)", app.url, spec)
    with AppProcess("fab", workdir / "fab") as app:
        os.environ["FIDELITY_FAB_TOKEN"] = app.login()
        auth = HeaderValue(from_env="FIDELITY_FAB_TOKEN", prefix="Bearer ")
        spec = ContractSpec(
            openapi=app.app.document,
            max_examples=3,
            seed=seed,
            include=["GET /api/v1/.*"],
            headers={"Authorization": auth},
        )
        show("flask-appbuilder (OpenAPI 3.0)", app.url, spec)
    with AppProcess("piccolo", workdir / "piccolo") as app:
        show(
            "piccolo-admin (OpenAPI 3.1)",
            app.url,
            ContractSpec(openapi=app.app.document, max_examples=5, seed=seed),
        )


if __name__ == "__main__":
    sys.exit(main())

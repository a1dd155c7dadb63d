"""The gate and plain `st run` side by side on the same document, operations, examples and seed.

`compare` runs the gate (the `run_contract_tests` activity), then the `st run` command the
gate's own `contract.json` gives to reproduce it (with the `schemathesis.toml` it gives), with
`--report json,ndjson`. Failures are compared as schemathesis lists them:

- `(code, operation)`: the pairs of `st run`'s JSON report (`failures[].code` x `operations`);
- `(check, operation)`: the same pairs, each with the check that raised it, which `st run`
  writes in its NDJSON events (the first check that raised a failure of that code on that
  operation, as schemathesis keeps the first and drops its repeats).

The verdicts compare `st run`'s exit code (0: passed) with the gate's `passed`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemathesis.generation.meta import report_label
from temporalio.testing import ActivityEnvironment

from activities.contract import ContractActivities
from warden.models.contract import ContractFailure, ContractInput, ContractReport, ContractSpec
from warden.settings import Settings

ST = Path(sys.executable).parent / "st"
Pair = tuple[str, str]


@dataclass
class Comparison:
    name: str
    gate: ContractReport
    st_exit_code: int
    st_checks: set[Pair]
    st_codes: set[Pair]
    st_cases: int
    st_operations: dict[str, Any]
    st_output: str = field(repr=False, default="")

    #: Every failure the gate found: its `contract.json` (the report in history keeps 50).
    gate_failures: list[ContractFailure] = field(default_factory=list)

    @property
    def gate_checks(self) -> set[Pair]:
        return {(f.check, f.operation) for f in self.gate_failures if f.operation != "(run)"}

    @property
    def gate_codes(self) -> set[Pair]:
        return {(f.code or "", f.operation) for f in self.gate_failures if f.operation != "(run)"}

    @property
    def same_failures(self) -> bool:
        return self.gate_checks == self.st_checks and self.gate_codes == self.st_codes

    @property
    def same_verdict(self) -> bool:
        return self.gate.passed == (self.st_exit_code == 0)

    def describe(self) -> str:
        return (
            f"{self.name}: gate {'passed' if self.gate.passed else 'failed'} "
            f"({len(self.gate_checks)} (check, operation) failures, {self.gate.test_cases} cases), "
            f"st run exit {self.st_exit_code} ({len(self.st_checks)} failures, {self.st_cases} cases); "
            f"failure sets equal: {'yes' if self.same_failures else 'no'}, "
            f"verdicts equal: {'yes' if self.same_verdict else 'no'}"
        )

    def differences(self) -> str:
        return (
            f"only gate: {sorted(self.gate_checks - self.st_checks)}\n"
            f"only st run: {sorted(self.st_checks - self.gate_checks)}\n"
            f"codes only gate: {sorted(self.gate_codes - self.st_codes)}\n"
            f"codes only st run: {sorted(self.st_codes - self.gate_codes)}\n"
            f"gate errors: {self.gate.errors[:5]}\nst run output tail:\n{self.st_output[-3000:]}"
        )


async def run_gate(settings: Settings, input: ContractInput) -> ContractReport:
    report: ContractReport = await ActivityEnvironment().run(
        ContractActivities(settings).run_contract_tests, input
    )
    return report


async def compare(
    name: str,
    settings: Settings,
    base_url: str,
    spec: ContractSpec,
    workdir: Path,
    *,
    st_timeout: float = 600,
) -> Comparison:
    input = ContractInput(
        release_id=f"fidelity-{name}",
        stage="dev",
        base_url=base_url,
        spec=spec,
        trace_id=f"trace-fidelity-{name}",
    )
    report = await run_gate(settings, input)
    assert report.json_report is not None
    on_disk = json.loads(Path(report.json_report).read_text())
    reproduce = on_disk["reproduce"]
    assert reproduce is not None, report.summary()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "schemathesis.toml").write_text(reproduce["config"])
    out = workdir / "st-report"
    argv = [str(ST), *(os.path.expandvars(a) for a in reproduce["argv"][1:])]
    argv += ["--report", "json,ndjson", "--report-dir", str(out), "--no-color"]
    done = await asyncio.to_thread(
        subprocess.run,
        argv,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=st_timeout,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    st_json = json.loads(next(out.glob("json-*.json")).read_text())
    origins = check_names(next(out.glob("ndjson-*.ndjson")))
    codes = {(group["code"], op) for group in st_json["failures"] for op in group["operations"]}
    checks = {(origins.get((code, op), f"?{code}"), op) for code, op in codes}
    return Comparison(
        name=name,
        gate=report,
        st_exit_code=done.returncode,
        st_checks=checks,
        st_codes=codes,
        st_cases=st_json["test_cases"]["generated"],
        st_operations=st_json["operations"] or {},
        st_output=done.stdout + done.stderr,
        gate_failures=[ContractFailure.model_validate(f) for f in on_disk["failures"]],
    )


def check_names(ndjson: Path) -> dict[Pair, str]:
    """(failure code, operation as `st run` names it) -> the first check that raised it."""
    first: dict[Pair, str] = {}
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished or "checks" not in finished.get("recorder", {}):
            continue
        recorder = finished["recorder"]
        for case_id, checks in recorder["checks"].items():
            case = recorder["cases"][case_id]["value"]
            scenario = ((case.get("meta") or {}).get("phase") or {}).get("data", {}).get("scenario")
            label = report_label(
                operation_label=recorder["label"],
                method=case["method"],
                path=case["path"],
                scenario=scenario,
            )
            for check in checks:
                info = check.get("failure_info")
                if info:
                    first.setdefault((info["failure"]["code"], label), check["name"])
    return first

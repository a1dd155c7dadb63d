"""The contract gate against a real Support Desk over loopback: real schemathesis runs, real reports."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.contract import ContractActivities
from examples.support_desk.launcher import SupportDeskProcess, free_port
from tests.contract.conftest import start_desk
from tests.helpers import recording_server
from warden.models.contract import ContractInput, ContractReport, ContractSpec
from warden.settings import Settings

SUGGEST = "POST /solutions/suggest"
AUTH = {"Authorization": {"from_env": "SUPPORT_DESK_TOKEN", "prefix": "Bearer "}}


def gate_input(base_url: str, *, stage: str = "dev", **spec: Any) -> ContractInput:
    spec.setdefault("max_examples", 8)
    spec.setdefault("seed", 20240601)
    return ContractInput(
        release_id="release-support-desk-1.4.0",
        stage=stage,
        base_url=base_url,
        spec=ContractSpec(**spec),
        trace_id="trace-contract-test",
    )


async def run_gate(
    settings: Settings, input: ContractInput, env: ActivityEnvironment | None = None
) -> ContractReport:
    env = env or ActivityEnvironment()
    result: ContractReport = await env.run(ContractActivities(settings).run_contract_tests, input)
    return result


def junit_cases(path: str | None) -> dict[str, ElementTree.Element]:
    assert path is not None
    root = ElementTree.parse(path).getroot()
    return {case.attrib["name"]: case for case in root.iter("testcase")}


async def test_good_build_passes_every_check(
    settings: Settings, good_desk: SupportDeskProcess
) -> None:
    heartbeats: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details)

    report = await run_gate(settings, gate_input(good_desk.url), env)

    assert report.passed, report.summary()
    assert report.failures == [] and report.errors == []
    assert report.operations_total > 20
    assert report.operations_tested == report.operations_total
    assert report.test_cases > report.operations_total
    assert report.seed == 20240601
    # Progress was reported as operations finished, not only at the end.
    assert len(heartbeats) >= report.operations_total

    cases = junit_cases(report.junit_report)
    assert SUGGEST in cases and len(cases) == report.operations_total
    assert not [
        c for c in cases.values() if c.find("failure") is not None or c.find("error") is not None
    ]
    assert report.json_report is not None
    on_disk = json.loads(Path(report.json_report).read_text())
    assert on_disk["passed"] is True and on_disk["stage"] == "dev"
    assert {op["status"] for op in on_disk["operations"]} == {"passed"}


async def test_bad_build_fails_on_the_flagged_operation_with_a_reproducing_curl(
    settings: Settings, bad_desk: SupportDeskProcess
) -> None:
    report = await run_gate(settings, gate_input(bad_desk.url))

    assert not report.passed
    assert report.failures_total == len(report.failures) > 0
    assert {f.operation for f in report.failures} == {SUGGEST}
    assert "response_schema_conformance" in {f.check for f in report.failures}
    assert report.summary().startswith("failed:") and SUGGEST in report.summary()
    for failure in report.failures:
        assert failure.curl.startswith("curl -X POST")
        assert (
            "/solutions/suggest" in failure.curl
            and "X-Trace-Id: trace-contract-test" in failure.curl
        )

    cases = junit_cases(report.junit_report)
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == {SUGGEST}
    failure_types = {f.attrib["type"] for f in cases[SUGGEST].iter("failure")}
    assert "response_schema_conformance" in failure_types
    assert "Reproduce with:" in (cases[SUGGEST].find("failure").text or "")  # type: ignore[union-attr]
    assert report.json_report is not None
    on_disk = json.loads(Path(report.json_report).read_text())
    assert on_disk["passed"] is False and on_disk["failures_total"] == report.failures_total

    if shutil.which("curl"):
        schema_failure = next(
            f for f in report.failures if f.check == "response_schema_conformance"
        )
        replay = subprocess.run(
            [*shlex.split(schema_failure.curl), "-s", "-o", "-", "-w", "\n%{http_code}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        body, _, status = replay.stdout.rpartition("\n")
        assert status == "200"
        confidences = [s["confidence"] for s in json.loads(body)["solutions"]]
        assert confidences and all(
            isinstance(c, str) for c in confidences
        )  # still violates the schema


async def test_bad_build_passes_while_the_flag_is_off(
    settings: Settings, bad_desk_flag_off: SupportDeskProcess
) -> None:
    report = await run_gate(settings, gate_input(bad_desk_flag_off.url))
    assert report.passed, report.summary()


async def test_excluding_the_broken_operation_passes_and_include_narrows(
    settings: Settings, bad_desk: SupportDeskProcess
) -> None:
    excluded = await run_gate(settings, gate_input(bad_desk.url, exclude=[SUGGEST], max_examples=3))
    assert excluded.passed, excluded.summary()
    assert excluded.operations_total == excluded.operations_tested
    assert SUGGEST not in junit_cases(excluded.junit_report)

    only = await run_gate(
        settings, gate_input(bad_desk.url, stage="staging", include=["suggestSolutions"])
    )
    assert only.operations_total == 1 and not only.passed
    assert {f.operation for f in only.failures} == {SUGGEST}


def assert_refused(report: ContractReport, error_type: str, *needles: str) -> dict[str, Any]:
    """A refused run: failed, with its reason, and both report files written and saying why."""
    assert not report.passed and report.error_type == error_type, report
    assert report.reason is not None and "\n" not in report.reason
    for needle in needles:
        assert needle in report.reason, report.reason
    assert report.summary() == f"failed: {report.reason}"
    assert report.json_report and report.junit_report
    on_disk: dict[str, Any] = json.loads(Path(report.json_report).read_text())
    assert on_disk["passed"] is False and on_disk["reason"] == report.reason
    run = junit_cases(report.junit_report)["(run)"].find("error")
    assert run is not None and run.attrib["type"] == error_type
    assert report.reason[:100] in run.attrib["message"]
    assert "Traceback" not in Path(report.json_report).read_text()
    return on_disk


async def test_unreachable_spec_fails_the_gate_with_both_reports(settings: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    report = await run_gate(settings, gate_input(url))
    assert_refused(report, "InvalidSpec", "unreachable", url)


async def test_invalid_document_is_tested_as_st_run_tests_it_and_refused_in_strict_mode(
    settings: Settings, tmp_path: Path
) -> None:
    broken = {"openapi": "3.1.0", "paths": {"/ping": {"get": {"responses": "none"}}}}

    def serve(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if path == "/openapi.json":
            return 200, {"Content-Type": "application/json"}, json.dumps(broken).encode()
        return 200, {"Content-Type": "text/html"}, b"<html>not an API</html>"

    with recording_server(serve) as server:
        lenient = await run_gate(settings, gate_input(server.url))
        strict = await run_gate(
            settings, gate_input(server.url, stage="strict", strict_document=True)
        )
        not_openapi = await run_gate(
            settings, gate_input(server.url, stage="html", openapi="/index.html")
        )
    # Loaded as st run loads it: the broken operation is an error of that operation.
    assert not lenient.passed and lenient.reason is None
    assert lenient.operations_errored == 1 and lenient.operations_total == 1
    assert [e.split(":")[0] for e in lenient.errors] == ["GET /ping"]
    assert junit_cases(lenient.junit_report)["GET /ping"].find("error") is not None
    # Strict: refused, with every problem listed.
    on_disk = assert_refused(strict, "InvalidSpec", "invalid", "2 problem(s)")
    assert len(strict.errors) == 2 and len(on_disk["errors"]) == 2
    assert any(e.startswith("/paths//ping/get/responses") for e in strict.errors)
    assert any("info" in e for e in strict.errors)
    assert_refused(not_openapi, "InvalidSpec", "OpenAPI")

    path = tmp_path / "openapi.yaml"
    path.write_text("openapi: 3.1.0\ninfo: {title: x}\npaths: []\n")
    from_file = await run_gate(settings, gate_input("http://127.0.0.1:9", openapi=f"file:{path}"))
    assert_refused(from_file, "InvalidSpec", str(path), "paths")


async def test_strict_document_passes_a_valid_document(
    settings: Settings, good_desk: SupportDeskProcess
) -> None:
    report = await run_gate(
        settings, gate_input(good_desk.url, include=[SUGGEST], strict_document=True, max_examples=3)
    )
    assert report.passed, report.summary()


async def test_the_operation_serving_the_document_is_left_out_unless_included(
    settings: Settings,
) -> None:
    """As `st run` does: the document's own endpoint is not an operation under test by default."""
    document = {
        "openapi": "3.0.3",
        "info": {"title": "self-describing", "version": "1"},
        "paths": {
            "/openapi.json": {
                "get": {"responses": {"200": {"description": "this document"}}},
            },
            "/ping": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "pong",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    }
                }
            },
        },
    }

    def serve(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if method == "GET" and path.split("?")[0] == "/openapi.json":
            return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()
        if method == "GET" and path.split("?")[0] == "/ping":
            return 200, {"Content-Type": "application/json"}, b"{}"
        return 405, {"Content-Type": "application/json", "Allow": "GET"}, b"{}"

    with recording_server(serve) as server:
        default = await run_gate(settings, gate_input(server.url, max_examples=2))
        excluding = await run_gate(
            settings, gate_input(server.url, stage="exclude", exclude=["GET /ping"], max_examples=2)
        )
        included = await run_gate(
            settings,
            gate_input(server.url, stage="include", include=["/openapi.json"], max_examples=2),
        )
    assert "GET /openapi.json" not in junit_cases(default.junit_report)
    assert default.operations_total == 1
    assert all(f.operation.endswith(" /ping") for f in default.failures)
    # Excluding the other operations does not select the document's own endpoint either...
    assert excluding.reason is not None and excluding.error_type == "GateConfigError"
    # ...but an include that names it does.
    assert included.operations_total == 1
    assert "GET /openapi.json" in junit_cases(included.junit_report)


async def test_every_request_carries_request_and_trace_ids(settings: Settings) -> None:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "ping", "version": "1"},
        "paths": {
            "/ping": {
                "get": {
                    "operationId": "ping",
                    "responses": {
                        "200": {
                            "description": "pong",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            }
        },
    }

    def serve(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if path == "/openapi.json":
            return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()
        if method == "GET" and path.split("?")[0] == "/ping":
            return 200, {"Content-Type": "application/json"}, b"{}"
        return 405, {"Content-Type": "application/json", "Allow": "GET"}, b"{}"

    with recording_server(serve) as server:
        report = await run_gate(settings, gate_input(server.url))
        requests = list(server.requests)
    assert report.operations_tested == 1
    assert len(requests) > 2  # the document, schemathesis' capability probes, then the test cases
    headers = [{k.lower(): v for k, v in r["headers"].items()} for r in requests]
    for request in headers:
        assert request.get("x-trace-id") == "trace-contract-test", request
        assert request.get("x-request-id"), request
    # Each test case has its own request id (schemathesis' own probes share the run's).
    case_ids = [h["x-request-id"] for h in headers if "x-schemathesis-testcaseid" in h]
    assert case_ids and len(set(case_ids)) == len(case_ids)


async def test_auth_header_from_the_environment_is_used_and_never_reported(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "desk-token-7c1e0f9b"
    monkeypatch.setenv("SUPPORT_DESK_TOKEN", token)
    desk = start_desk(tmp_path, "bad", 100, api_token=token)
    try:
        report = await run_gate(settings, gate_input(desk.url, max_examples=4, headers=AUTH))
        anonymous = await run_gate(
            settings, gate_input(desk.url, stage="anonymous", max_examples=2)
        )
    finally:
        desk.stop()
    # With the token the run gets past authentication and finds the real defect.
    assert {f.operation for f in report.failures} == {SUGGEST}
    assert report.json_report and report.junit_report
    for text in (
        report.model_dump_json(),
        Path(report.json_report).read_text(),
        Path(report.junit_report).read_text(),
    ):
        assert token not in text
    # Without it every operation is refused: nothing was really tested, so the gate fails.
    assert not anonymous.passed
    assert any("401/403" in error for error in anonymous.errors)

    monkeypatch.delenv("SUPPORT_DESK_TOKEN")
    missing = await run_gate(settings, gate_input("http://127.0.0.1:9", headers=AUTH))
    assert_refused(missing, "GateConfigError", "SUPPORT_DESK_TOKEN")


async def test_include_that_matches_nothing_is_a_config_error(
    settings: Settings, good_desk: SupportDeskProcess
) -> None:
    report = await run_gate(settings, gate_input(good_desk.url, include=["GET /no-such-path"]))
    assert_refused(report, "GateConfigError", "GET /no-such-path")


async def test_time_budget_stops_the_run_and_fails_the_gate(
    settings: Settings, good_desk: SupportDeskProcess
) -> None:
    report = await run_gate(
        settings, gate_input(good_desk.url, max_examples=5000, time_budget="1s")
    )
    assert report.timed_out and not report.passed
    assert report.operations_tested < report.operations_total or report.test_cases > 0
    cases = junit_cases(report.junit_report)
    assert cases["(run)"].find("error") is not None
    assert report.json_report and json.loads(Path(report.json_report).read_text())["timed_out"]


async def test_cancelled_run_stops_sending_requests(
    settings: Settings, good_desk: SupportDeskProcess
) -> None:
    env = ActivityEnvironment()
    first_heartbeat = asyncio.Event()
    env.on_heartbeat = lambda *details: first_heartbeat.set()
    run = asyncio.ensure_future(
        run_gate(settings, gate_input(good_desk.url, max_examples=5000), env)
    )
    await asyncio.wait_for(first_heartbeat.wait(), timeout=60)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    async with httpx.AsyncClient() as http:
        before = served_requests(await http.get(f"{good_desk.url}/metrics"))
        await asyncio.sleep(1.0)
        after = served_requests(await http.get(f"{good_desk.url}/metrics"))
    assert after == before + 1  # only the metrics scrape itself


def served_requests(metrics: httpx.Response) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.text.splitlines()
        if line.startswith("http_requests_total{")
    )

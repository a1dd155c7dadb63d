"""The gate against `st run` on API documents nobody here wrote, served by real apps from PyPI.

For each document, the same subset, examples, seed and checks go through the gate and through
the `st run` command the gate's report gives to reproduce it; the (check, operation) failure
sets, the (failure code, operation) sets and the verdicts must be equal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from examples.support_desk.launcher import SupportDeskProcess
from tests.contract.apps import AppProcess
from tests.contract.fidelity import Comparison, compare
from tests.helpers import recording_server
from warden.models.contract import STATEFUL_LABEL, ContractSpec
from warden.settings import Settings

#: httpbin operations that answer at once (no delays, streams or redirect chains).
HTTPBIN_FAILING = [
    "/status/{codes}",
    "/anything/{anything}",
    "GET /json",
    "GET /headers",
    "GET /uuid",
    "GET /xml",
    "GET /html",
    "GET /robots.txt",
    "GET /deny",
]
HTTPBIN_CLEAN = ["GET /get", "GET /headers", "GET /ip", "GET /user-agent", "GET /uuid"]


@pytest.fixture(scope="module")
def httpbin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    with AppProcess("httpbin", tmp_path_factory.mktemp("httpbin")) as app:
        yield app


def assert_same(comparison: Comparison) -> None:
    print(comparison.describe())
    assert comparison.same_failures, comparison.differences()
    assert comparison.same_verdict, comparison.differences()


async def test_swagger_2_with_vendor_fields_is_loaded_and_fails_as_st_run_fails(
    settings: Settings, httpbin: AppProcess, tmp_path: Path
) -> None:
    """httpbin's Swagger 2.0 has non-standard `info.contact` fields and operations whose path
    parameters are not declared: `st run` tests it, and so does the gate."""
    spec = ContractSpec(
        openapi=httpbin.app.document, max_examples=5, seed=7, include=HTTPBIN_FAILING
    )
    comparison = await compare("httpbin", settings, httpbin.url, spec, tmp_path)
    assert_same(comparison)
    report = comparison.gate
    assert report.reason is None and not report.passed
    assert ("positive_data_acceptance", "GET /status/{codes}") in comparison.gate_checks
    # The broken operations are errors of those operations, as st run reports them.
    assert any(e.startswith("GET /anything/{anything}: Schema Error") for e in report.errors)
    assert all(f.phase in ("examples", "coverage", "fuzzing", "stateful") for f in report.failures)
    assert all(f.code and f.code.startswith("ST") for f in report.failures)


async def test_swagger_2_clean_subset_passes_as_st_run_passes(
    settings: Settings, httpbin: AppProcess, tmp_path: Path
) -> None:
    spec = ContractSpec(openapi=httpbin.app.document, max_examples=5, seed=7, include=HTTPBIN_CLEAN)
    comparison = await compare("httpbin-clean", settings, httpbin.url, spec, tmp_path)
    assert_same(comparison)
    assert comparison.gate.passed and comparison.st_exit_code == 0


async def test_strict_mode_refuses_httpbin_and_lists_every_problem(
    settings: Settings, httpbin: AppProcess
) -> None:
    from tests.contract.fidelity import run_gate
    from warden.models.contract import ContractInput

    report = await run_gate(
        settings,
        ContractInput(
            release_id="fidelity-strict",
            stage="dev",
            base_url=httpbin.url,
            spec=ContractSpec(openapi=httpbin.app.document, strict_document=True),
            trace_id="t",
        ),
    )
    assert not report.passed and report.error_type == "InvalidSpec"
    assert len(report.errors) > 1
    assert any(e.startswith("/info/contact") for e in report.errors)


async def test_openapi_3_0_behind_a_login_fails_as_st_run_fails(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flask-AppBuilder's security REST API, read-only operations, with its JWT."""
    with AppProcess("fab", tmp_path / "app") as fab:
        monkeypatch.setenv("FIDELITY_FAB_TOKEN", fab.login())
        spec = ContractSpec(
            openapi=fab.app.document,
            max_examples=3,
            seed=7,
            include=["GET /api/v1/.*"],
            headers={"Authorization": {"from_env": "FIDELITY_FAB_TOKEN", "prefix": "Bearer "}},
        )
        comparison = await compare("fab", settings, fab.url, spec, tmp_path / "st")
    assert_same(comparison)
    assert not comparison.gate.passed and comparison.gate_checks
    # Only GETs are under test: any other method is one the gate sent undeclared, and it is
    # named by the method sent, with its check, as st run names it.
    undeclared = {(c, op) for c, op in comparison.gate_checks if not op.startswith("GET ")}
    assert undeclared and {c for c, _ in undeclared} <= {"unsupported_method", "not_a_server_error"}


async def test_openapi_3_1_fails_as_st_run_fails(settings: Settings, tmp_path: Path) -> None:
    """Piccolo Admin's public API (FastAPI)."""
    with AppProcess("piccolo", tmp_path / "app") as piccolo:
        spec = ContractSpec(openapi=piccolo.app.document, max_examples=5, seed=7)
        comparison = await compare("piccolo", settings, piccolo.url, spec, tmp_path / "st")
    assert_same(comparison)
    undeclared = [f for f in comparison.gate_failures if f.check == "unsupported_method"]
    assert undeclared and all(not f.operation.startswith("GET ") for f in undeclared)


async def test_sample_service_fails_as_st_run_fails(
    settings: Settings, bad_desk: SupportDeskProcess, tmp_path: Path
) -> None:
    spec = ContractSpec(max_examples=5, seed=7)
    comparison = await compare("support-desk", settings, bad_desk.url, spec, tmp_path)
    assert_same(comparison)
    assert not comparison.gate.passed
    stateful = [f for f in comparison.gate_failures if f.phase == "stateful"]
    assert all(f.operation == STATEFUL_LABEL and f.chain for f in stateful)


ITEM = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
}
LINKED_DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "items", "version": "1"},
    "paths": {
        "/items": {
            "post": {
                "operationId": "createItem",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "created",
                        "content": {"application/json": {"schema": ITEM}},
                        "links": {
                            "GetItem": {
                                "operationId": "getItem",
                                "parameters": {"itemId": "$response.body#/id"},
                            },
                            "DeleteItem": {
                                "operationId": "deleteItem",
                                "parameters": {"itemId": "$response.body#/id"},
                            },
                        },
                    },
                    "400": {"description": "bad input"},
                },
            }
        },
        "/items/{itemId}": {
            "get": {
                "operationId": "getItem",
                "parameters": [
                    {"name": "itemId", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "the item",
                        "content": {"application/json": {"schema": ITEM}},
                    },
                    "404": {"description": "no such item"},
                },
            },
            "delete": {
                "operationId": "deleteItem",
                "parameters": [
                    {"name": "itemId", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "204": {
                        "description": "deleted",
                        "links": {
                            "GetDeletedItem": {
                                "operationId": "getItem",
                                "parameters": {"itemId": "$request.path.itemId"},
                            }
                        },
                    },
                    "404": {"description": "no such item"},
                },
            },
        },
    },
}


async def test_a_stateful_finding_is_named_by_its_chain_as_st_run_names_it(
    settings: Settings, tmp_path: Path
) -> None:
    """A deleted item can still be read: only a chain (create, delete, read) finds that."""
    items: dict[str, str] = {}
    deleted: set[str] = set()

    def serve(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        route = path.split("?")[0]
        json_type = {"Content-Type": "application/json"}
        if method == "GET" and route == "/openapi.json":
            return 200, json_type, json.dumps(LINKED_DOCUMENT).encode()
        if method == "POST" and route == "/items":
            try:
                payload = json.loads(body)
                name = payload["name"]
                assert isinstance(name, str) and set(payload) == {"name"}
            except Exception:
                return 400, json_type, b'{"error": "bad input"}'
            item_id = uuid.uuid4().hex
            items[item_id] = name
            return 201, json_type, json.dumps({"id": item_id, "name": name}).encode()
        item_id = route.removeprefix("/items/")
        if method == "DELETE" and route.startswith("/items/"):
            if item_id not in items or item_id in deleted:
                return 404, json_type, b'{"error": "no such item"}'
            deleted.add(item_id)
            return 204, {}, b""
        if method == "GET" and route.startswith("/items/"):
            # The defect: a deleted item is still served.
            if item_id not in items:
                return 404, json_type, b'{"error": "no such item"}'
            return 200, json_type, json.dumps({"id": item_id, "name": items[item_id]}).encode()
        return 405, {**json_type, "Allow": "GET, POST"}, b"{}"

    with recording_server(serve) as server:
        spec = ContractSpec(max_examples=10, seed=7, checks=["use_after_free"])
        comparison = await compare("linked-items", settings, server.url, spec, tmp_path)
    assert_same(comparison)
    stateful = [f for f in comparison.gate_failures if f.phase == "stateful"]
    assert stateful, comparison.gate_failures
    for failure in stateful:
        assert failure.operation == STATEFUL_LABEL
        assert failure.check == "use_after_free" and failure.code == "ST301"
        assert failure.chain[0] == "POST /items" and failure.chain[-1] == "GET /items/{itemId}"
        assert "DELETE /items/{itemId}" in failure.chain
        assert failure.curl.count("curl ") == len(failure.chain)
    cases = ElementTree.parse(str(comparison.gate.junit_report)).getroot().iter("testcase")
    stateful_case = next(c for c in cases if c.attrib["name"] == STATEFUL_LABEL)
    assert "Chain: POST /items -> " in (stateful_case.find("failure").text or "")  # type: ignore[union-attr]

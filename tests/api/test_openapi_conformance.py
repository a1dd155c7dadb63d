"""schemathesis against the API's own OpenAPI document, the app served over real HTTP on 127.0.0.1.

The document is the app's (every endpoint switched on, as in dev); each operation gets its own
served app, authenticated as an admin. No worker polls the app's task queue: releases that
generated plans start are only recorded by Temporal, so no generated URL is ever called.
Every response must be declared in the document and match its schema; no input may cause a 5xx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import yaml
from schemathesis import Case, CheckFunction
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import ApiFactory
from warden.api import create_app
from warden.settings import Settings
from warden.stores.governance import new_token


def _document() -> dict[str, Any]:
    # Stores open on first use, so building the app to read its document touches nothing.
    settings = Settings(env="dev", dev_endpoints=True, ops_endpoints=True, governance_file=None)
    return create_app(settings).openapi()


DOCUMENT = _document()
#: A plan has rules across fields that JSON Schema cannot state (a stage needs a gate, ramped flags
#: must be declared, a quorum must be reachable, a base_url must parse as an http(s) URL with a
#: valid port): a plan the schema admits may still be refused, with a 422 naming the field. For
#: these operations every check but "schema-valid requests are accepted" applies.
PLAN_OPERATIONS = {("POST", "/releases"), ("POST", "/dev/seed")}
#: The kill switch waits for its workflow: with no worker polling, it answers 503 `NoWorker` (as
#: documented) rather than waiting for ever; that is the only server error it may give.
WORKER_OPERATIONS = {("POST", "/flags/{environment}/{flag}"), ("GET", "/flags")}
schema = schemathesis.openapi.from_dict(DOCUMENT)
#: The admin's token, fixed for the module: schemathesis builds some cases when it collects them.
ADMIN_TOKEN, ADMIN_TOKEN_SHA256 = new_token()


@schema.auth(refresh_interval=None)
class AdminToken:
    """Authenticates generated requests; schemathesis leaves it off the cases that test missing
    or bad credentials, which must answer 401."""

    def get(self, case: Case[Any], context: schemathesis.AuthContext) -> str:
        return ADMIN_TOKEN

    def set(self, case: Case[Any], data: str, context: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


@pytest.fixture
def served(serve_api: ApiFactory, tmp_path: Path) -> str:
    governance = tmp_path / "governance.yaml"
    governance.write_text(
        yaml.safe_dump(
            {
                "version": "1",
                "access_committee": "board",
                "users": [{"name": "root", "roles": ["admin"], "token_sha256": ADMIN_TOKEN_SHA256}],
                "committees": [{"name": "board", "members": [{"user": "root"}]}],
            }
        )
    )
    api = serve_api(GOVERNANCE_FILE=str(governance), TASK_QUEUE="openapi-conformance-no-worker")
    assert httpx.get(f"{api.url}/openapi.json").json() == DOCUMENT
    return api.url


@schema.parametrize()
@hypothesis.settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_every_response_matches_the_document(case: Case[Any], served: str) -> None:
    excluded: list[CheckFunction] = []
    if (case.method, case.path) in PLAN_OPERATIONS:
        excluded.append(positive_data_acceptance)
    if (case.method, case.path) in WORKER_OPERATIONS:
        excluded += [not_a_server_error, positive_data_acceptance]
    response = case.call_and_validate(base_url=served, excluded_checks=excluded, timeout=60)
    if response.status_code >= 500:
        assert (case.method, case.path) in WORKER_OPERATIONS, response.text
        assert (response.status_code, response.json()["error"]["type"]) == (503, "NoWorker")
    if not case.operation.schema.is_security_param_negated(case):
        assert response.status_code != 401, "the admin's token was sent"

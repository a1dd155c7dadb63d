"""A contract failure's reproducing curl stays short: a long request body goes into a file beside
the report, and the command still sends exactly the body the failing request sent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from schemathesis.core.curl import generate

from activities.contract_report import CURL_BODY_INLINE_LIMIT, RunCollector, body_from_file
from tests.helpers import RecordingServer
from warden.models.contract import ContractFailure

LONG_JSON = json.dumps({"subject": "printer on fire", "body": "it's " + "x" * 4000, "tags": []})


def _curl(url: str, body: str) -> str:
    return generate(
        method="POST",
        url=f"{url}/tickets",
        body=body,
        verify=True,
        headers={"Content-Type": "application/json", "Authorization": "[Filtered]"},
        known_generated_headers=None,
    ).command


def _sent(command: str) -> bytes:
    with RecordingServer() as server:
        command = command.replace("http://127.0.0.1:1", server.url)
        subprocess.run(["bash", "-c", command + " -s -o /dev/null"], check=True, timeout=30)
        [request] = server.requests
    assert request["path"] == "/tickets" and request["method"] == "POST"
    return bytes(request["body"])


@pytest.mark.parametrize(
    "body",
    [
        LONG_JSON,
        "line one\nline 'two'\r\n\ttabbed \x7f and ünïcode \u2028 " + "y" * 2000,  # $'...'
        "a nul \x00 byte " + "z" * 2000,
    ],
    ids=["json", "control-characters", "nul"],
)
def test_a_long_body_goes_to_a_file_and_the_curl_sends_it_unchanged(
    tmp_path: Path, body: str
) -> None:
    original = _curl("http://127.0.0.1:1", body)
    short = body_from_file(original, tmp_path / "bodies")
    assert len(short) < 300, short
    [file] = (tmp_path / "bodies").iterdir()
    assert f"--data-binary @{file}" in short
    assert short.startswith("curl -X POST -H 'Content-Type: application/json'")
    assert short.endswith(" http://127.0.0.1:1/tickets")
    assert file.read_bytes() == body.encode()
    assert _sent(short) == body.encode()
    if "\x00" not in body:  # bash cannot pass a NUL in an argument; from the file it is sent
        assert _sent(original) == body.encode()
    assert body_from_file(original, tmp_path / "bodies") == short  # the same body, the same file
    assert len(list((tmp_path / "bodies").iterdir())) == 1


def test_a_short_body_stays_inline(tmp_path: Path) -> None:
    curl = _curl("http://127.0.0.1:1", '{"subject": "hi"}')
    assert body_from_file(curl, tmp_path / "bodies") == curl
    assert not (tmp_path / "bodies").exists()
    no_body = "curl -X GET http://127.0.0.1:1/tickets"
    assert body_from_file(no_body, tmp_path) == no_body


def test_the_collector_shortens_every_failure_when_it_finishes(tmp_path: Path) -> None:
    collector = RunCollector(
        None, lambda text: text, operation_labels=["POST /tickets"], bodies_dir=tmp_path / "bodies"
    )
    failure = ContractFailure(
        operation="POST /tickets",
        check="not_a_server_error",
        message="500",
        curl=_curl("http://127.0.0.1:1", LONG_JSON),
    )
    collector.failures.append(failure)
    collector.finish()
    assert "--data-binary @" in failure.curl and len(failure.curl) < 300
    assert len(LONG_JSON) > CURL_BODY_INLINE_LIMIT

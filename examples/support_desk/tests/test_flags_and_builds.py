"""Flags from the flagd file steer a running desk; the bad build breaks only where `ai.solutions` is on."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from examples.support_desk.launcher import SupportDeskProcess
from examples.support_desk.models import SolutionSuggestions
from examples.support_desk.tests.conftest import eventually, metric, scrape, set_percent

_http = httpx.Client(timeout=5)


def suggest(url: str, conversation_id: str, question: str = "refund my order") -> httpx.Response:
    return _http.post(
        f"{url}/solutions/suggest", json={"conversationId": conversation_id, "question": question}
    )


def follows_contract(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    try:
        SolutionSuggestions.model_validate(response.json())
    except ValueError:
        return False
    return True


def test_a_flag_file_rewrite_reaches_the_running_service(flags_file: Path) -> None:
    with SupportDeskProcess(flags_file=flags_file) as desk:
        assert suggest(desk.url, "conv-1").json()["enabled"] is False
        set_percent(flags_file, "ai.solutions", 100)
        # The provider polls the file every 200 ms; a change is served well within a second.
        assert eventually(
            lambda: suggest(desk.url, "conv-1").json()["enabled"] is True, timeout=2.0
        )
        set_percent(flags_file, "ai.solutions", 0)
        assert eventually(
            lambda: suggest(desk.url, "conv-1").json()["enabled"] is False, timeout=2.0
        )


def test_a_percentage_rollout_reaches_a_stable_share_of_conversations(flags_file: Path) -> None:
    set_percent(flags_file, "ai.solutions", 25)
    with SupportDeskProcess(flags_file=flags_file) as desk:
        ids = [f"conv_{uuid.uuid4().hex[:12]}" for _ in range(400)]
        first = {i: suggest(desk.url, i).json()["enabled"] for i in ids}
        share = sum(first.values()) / len(ids)
        assert 0.15 <= share <= 0.35, share
        # The conversation id is the targeting key: each conversation keeps its answer.
        assert all(suggest(desk.url, i).json()["enabled"] == first[i] for i in ids[:50])


@pytest.mark.parametrize("build", ["good", "bad"])
def test_with_the_flag_off_both_builds_keep_the_contract(flags_file: Path, build: str) -> None:
    with SupportDeskProcess(flags_file=flags_file, build=build) as desk:  # type: ignore[arg-type]
        responses = [suggest(desk.url, f"conv-{n}", f"question {n}") for n in range(40)]
        assert all(follows_contract(r) for r in responses)
        assert metric(scrape(desk.url), "external_api_errors_total", api="ai-solutions") == 0


def test_the_bad_build_breaks_its_contract_and_raises_errors_only_with_the_flag_on(
    flags_file: Path,
) -> None:
    set_percent(flags_file, "ai.solutions", 100)
    with SupportDeskProcess(flags_file=flags_file, build="bad") as desk:
        responses = [suggest(desk.url, f"conv-{n}", f"question {n}") for n in range(40)]
        assert not any(follows_contract(r) for r in responses)
        assert any(r.status_code == 500 for r in responses)
        assert any(
            r.status_code == 200 and isinstance(r.json()["solutions"][0]["confidence"], str)
            for r in responses
        )
        text = scrape(desk.url)
        assert metric(text, "external_api_errors_total", api="ai-solutions") > 0
        assert (
            metric(text, "http_requests_total", route="/solutions/suggest", status_class="5xx") > 0
        )

    with SupportDeskProcess(flags_file=flags_file, build="good") as desk:
        assert all(
            follows_contract(suggest(desk.url, f"conv-{n}", f"question {n}")) for n in range(40)
        )

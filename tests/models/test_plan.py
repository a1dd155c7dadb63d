"""Plan validation: what a release manager writes, and the readable errors they get back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import plan_dict
from warden.models.common import format_duration, parse_duration
from warden.models.plan import PlanError, load_plan, parse_plan


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("7d", 604800),
        (90, 90),
        ("PT10S", None),
    ],
)
def test_durations(text: object, seconds: float | None) -> None:
    value = parse_duration(text)
    if seconds is not None:
        assert value == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["-5s", "soon", -1, "5 parsecs", True, float("nan")])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for text in ("0s", "45s", "1h30m", "2d", "250ms"):
        assert format_duration(parse_duration(text)) == text


def _problems(data: dict) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(data)
    return info.value.problems


def test_refusals_name_the_field() -> None:
    base = plan_dict("http://127.0.0.1:8081")
    dup = dict(base, stages=[base["stages"][0], dict(base["stages"][0])])
    assert _problems(dup) == ["stages: duplicate stage name(s): dev"]
    assert any(
        "stages: List should have at least 1 item" in p for p in _problems(dict(base, stages=[]))
    )
    empty_stage = dict(base, stages=[{"name": "dev", "base_url": "http://a"}])
    assert any(p.startswith("stages.0 (dev): stage 'dev' is empty") for p in _problems(empty_stage))
    bad_bake = dict(base, stages=[dict(base["stages"][0], bake="-1m")])
    assert any(
        p.startswith("stages.0 (dev).bake:") and "negative" in p for p in _problems(bad_bake)
    )
    unknown = dict(base, colour="blue")
    assert "colour: unknown key" in _problems(unknown)
    undeclared = dict(base, stages=[dict(base["stages"][0], flags=[{"flag": "ai.solutions"}])])
    assert _problems(undeclared) == [
        "(plan): stage 'dev' ramps ai.solutions which the plan's top-level 'flags' does not list"
    ]
    quorum = dict(base, stages=[dict(base["stages"][0], signoff={"approvers": ["a"], "quorum": 2})])
    assert any("quorum 2 cannot be reached by 1 approver(s)" in p for p in _problems(quorum))


def test_flag_ramps_default_by_stage_and_never_decrease() -> None:
    data = plan_dict("http://127.0.0.1:8081", flags=["ai.solutions"])
    for stage in data["stages"]:
        stage["flags"] = [{"flag": "ai.solutions"}]
    plan = parse_plan(data)
    assert [s.flags[0].steps_for(s.name) for s in plan.stages] == [
        [100],
        [100],
        [5, 25, 50, 100],
        [5, 25, 50, 100],
    ]
    data["stages"][2]["flags"] = [{"flag": "ai.solutions", "steps": [50, 25]}]
    assert any("must not decrease" in p for p in _problems(data))


def test_env_substitution(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        'service: svc\nversion: "${VER:-1.0.0}"\nowner: me\nstages:\n'
        "  - name: dev\n    base_url: ${DEV_URL}\n    smoke: [{name: h}]\n    description: $${LITERAL}\n"
    )
    with pytest.raises(PlanError) as info:
        load_plan(path, environ={})
    assert info.value.problems == [
        "line 6: environment variable DEV_URL is not set (or write ${DEV_URL:-default})"
    ]
    path.write_text(path.read_text().replace("    description: $${LITERAL}\n", ""))
    plan = load_plan(path, environ={"DEV_URL": "http://127.0.0.1:9999"})
    assert plan.version == "1.0.0" and plan.stages[0].base_url == "http://127.0.0.1:9999"
    assert plan.release_id == "release-svc-1.0.0"


def test_templates_expand_and_can_be_overridden() -> None:
    data = plan_dict("http://127.0.0.1:8081")
    data["stages"][2]["checks"] = [
        {
            "name": "errors",
            "template": "external-api-error-rate",
            "params": {"threshold": 0.02},
            "interval": "5s",
        },
        {"name": "down", "template": "im-channel-down"},
    ]
    plan = parse_plan(data)
    errors, down = plan.stages[2].checks
    assert (
        errors.max == 0.02
        and errors.interval == timedelta(seconds=5)
        and errors.action.value == "rollback"
    )
    assert down.hold == timedelta(seconds=30) and down.action.value == "notify" and down.min == 1
    assert any(
        "unknown template" in p
        for p in _problems(
            dict(data, stages=[dict(data["stages"][2], checks=[{"name": "x", "template": "nope"}])])
        )
    )

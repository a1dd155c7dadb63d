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
        "stages.0 (dev).flags: stage 'dev' ramps ai.solutions which the plan's top-level 'flags' "
        "does not list"
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


def test_every_problem_is_reported_in_one_pass() -> None:
    """Rules across fields (duplicate stages, undeclared flags, duplicate checks) are reported
    with the fields' own problems, not only once those are fixed."""
    base = plan_dict("http://127.0.0.1:8081")
    dev = dict(base["stages"][0], base_url="not a url", flags=[{"flag": "ai.solutions"}])
    check = {"name": "up", "query": {"provider": "prometheus", "query": "up"}, "min": 1}
    staging = dict(base["stages"][1], checks=[check, check], bake="soon")
    problems = _problems(dict(base, stages=[dev, staging, dict(base["stages"][0])]))
    assert any(p.startswith("stages.0 (dev).base_url:") for p in problems), problems
    assert any(p.startswith("stages.1 (staging).bake:") for p in problems), problems
    assert "stages: duplicate stage name(s): dev" in problems
    assert "stages.1 (staging).checks: check name(s) used twice: up" in problems
    assert any("ramps ai.solutions which the plan's top-level 'flags'" in p for p in problems)


@pytest.mark.parametrize(
    ("written", "read_as"),
    [("1:20", 80), ("0b101", 5), ("010", 8), ("0x1F", 31), ("1_0", 10), ("+5", 5)],
)
def test_a_yaml_number_never_becomes_a_different_version(
    tmp_path: Path, written: str, read_as: int
) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        f"service: support-desk\nversion: {written}\nowner: alice\n"
        "stages: [{name: dev, base_url: 'http://127.0.0.1:1', smoke: [{name: h, path: /}]}]\n"
    )
    with pytest.raises(PlanError) as info:
        load_plan(path, environ={})
    [problem] = info.value.problems
    assert problem.startswith("line 2, column 10: ")
    assert f'quote it ("{written}")' in problem and f"or write {read_as}" in problem
    if written.isalnum():  # quoted, it is the text written (where a version may hold it)
        path.write_text(path.read_text().replace(f"version: {written}", f'version: "{written}"'))
        assert load_plan(path, environ={}).version == written
    path.write_text(path.read_text().replace(f'"{written}"', written).replace(written, "2"))
    assert load_plan(path, environ={}).version == "2"  # a plain decimal reads as written


def test_numbers_yaml_reads_differently_are_refused_anywhere_with_the_other_problems(
    tmp_path: Path,
) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "service: support-desk\nversion: '1.0'\nowner: alice\nstages:\n"
        "  - {name: dev, base_url: 'http://127.0.0.1:1', smoke: [{name: h, path: /}], bake: 1:30}\n"
        "  - {name: 010, base_url: 'http://127.0.0.1:1', smoke: [{name: h, path: /}]}\n"
    )
    with pytest.raises(PlanError) as info:
        load_plan(path, environ={})
    problems = info.value.problems
    assert problems[0].startswith("line 5, column ") and "base-60" in problems[0]
    assert "'010' as an octal number, 8" in problems[1]
    assert "stages.1.name: 8 is a number, not text; quote it" in problems[2]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (True, "true is a boolean, not text"),
        (None, "there is no value here"),
        (2026, "2026 is a number, not text; quote it"),
    ],
)
def test_a_value_that_is_not_text_where_text_belongs_says_to_quote_it(
    value: object, says: str
) -> None:
    problems = _problems(dict(plan_dict("http://127.0.0.1:8081"), service=value))
    assert len(problems) == 1 and problems[0].startswith(f"service: {says}"), problems


def test_a_name_too_long_says_so_and_the_limit() -> None:
    problems = _problems(dict(plan_dict("http://127.0.0.1:8081"), service="a" * 300))
    assert len(problems) == 1 and problems[0].startswith("service: ")
    assert "is too long: 300 characters, at most 63" in problems[0]
    assert "lowercase" not in problems[0]  # the characters are fine; only the length is not
    both = _problems(dict(plan_dict("http://127.0.0.1:8081"), service="A" * 100))
    assert "too long: 100 characters, at most 63" in both[0] and "lowercase" in both[0]
    version = _problems(dict(plan_dict("http://127.0.0.1:8081"), version="1" * 65))
    assert "too long: 65 characters, at most 64" in version[0]

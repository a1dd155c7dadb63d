"""The docs say what the code does: the plan reference is generated from the models."""

from __future__ import annotations

from pathlib import Path

from warden.plan_reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_plan_reference_is_up_to_date() -> None:
    current = (ROOT / "docs" / "plan-reference.md").read_text()
    assert current == render(), (
        "regenerate it: python -m warden.plan_reference > docs/plan-reference.md"
    )


def test_example_plans_are_valid() -> None:
    from warden.models.plan import load_plan

    plans = sorted((ROOT / "examples" / "plans").glob("*.yaml"))
    assert plans
    for path in plans:
        load_plan(path, environ={})

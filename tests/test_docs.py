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


def _settings_table() -> list[str]:
    """The variables in the first column of docs/cli.md's settings table, in order."""
    import re

    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("| `WARDEN_"):
            first_column = line.split("|")[1]
            names += re.findall(r"`(WARDEN_[A-Z0-9_]+)`", first_column)
    return names


def test_every_setting_is_in_the_cli_settings_table() -> None:
    from warden.settings import Settings

    documented = _settings_table()
    settings = {f"WARDEN_{name.upper()}" for name in Settings.model_fields}
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    assert not settings - set(documented), (
        f"not in docs/cli.md: {sorted(settings - set(documented))}"
    )
    assert not set(documented) - settings, f"no such setting: {sorted(set(documented) - settings)}"
    assert {"WARDEN_DEV_SERVER_PORT", "WARDEN_DEV_SERVER_UI_PORT", "WARDEN_API_PORT"} <= set(
        documented
    )


def test_the_json_webhook_payload_is_documented_field_by_field() -> None:
    import re

    from activities.notify import render
    from warden.models.notice import Notice

    notice = Notice(key="k", title="t", text="x", release_id="r", stage="s", trace_id="tr")
    fields = set(render(notice, "json"))
    page = (ROOT / "docs" / "notices.md").read_text()
    documented = set(
        re.findall(r"^\| `([a-z_]+)` \|", page.split("## The `json:` payload")[1], re.M)
    )
    assert documented == fields


def test_metric_checks_warn_about_or_vector_0_and_show_the_up_pairing() -> None:
    page = (ROOT / "docs" / "metric-checks.md").read_text()
    section = page.split("### A target that is down")[1].split("\n### ")[0]
    assert "or vector(0)" in section and "reads 0" in section
    assert "up{" in section and "min: 1" in section

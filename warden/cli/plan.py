"""`warden plan`: validate a plan file, render it with its variables expanded, print its JSON
Schema, list metric check templates."""

from __future__ import annotations

import json

import click

from warden.cli.common import emit_json, json_option, require_id
from warden.models.plan import load_plan, parse_plan, plan_json_schema, read_plan


@click.group()
def plan() -> None:
    """Release plans: validate them, render them, and get their schema."""


@plan.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=str), callback=require_id)
@json_option
def validate(path: str, as_json: bool) -> None:
    """Check a plan; exit 0, or 2 with one line per problem (field path: what is wrong)."""
    parsed = load_plan(path)  # PlanError → one line per problem, exit 2
    if as_json:
        emit_json(parsed)
        return
    stages = " → ".join(
        s.name + (" [" + ", ".join(_gates(s)) + "]" if _gates(s) else "") for s in parsed.stages
    )
    click.echo(
        f"{path}: valid plan for {parsed.service} {parsed.version} (release id {parsed.release_id})"
    )
    click.echo(f"stages: {stages}")


@plan.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=str), callback=require_id)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the plan as one JSON document (the `plan` of `POST /releases`).",
)
def render(path: str, as_json: bool) -> None:
    """Print a plan with its ${VAR} and ${VAR:-default} expanded, as `warden release start`
    expands them; exit 2 with one line per problem when the plan is not valid."""
    text, data = read_plan(path)
    parsed = parse_plan(data, path)  # the same checks as `plan validate` and `release start`
    if not as_json:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    except (TypeError, ValueError):  # a YAML value JSON has no form for (a date, a set)
        click.echo(parsed.model_dump_json(indent=2, by_alias=True, exclude_unset=True))


def _gates(stage: object) -> list[str]:
    from warden.models.plan import Stage

    assert isinstance(stage, Stage)
    gates = []
    if stage.smoke:
        gates.append(f"{len(stage.smoke)} smoke")
    if stage.contract:
        gates.append("contract")
    if stage.checks:
        gates.append(f"{len(stage.checks)} checks")
    if stage.flags:
        gates.append("flags " + ",".join(f.flag for f in stage.flags))
    if stage.signoff:
        gates.append(f"signoff {stage.signoff.quorum}")
    return gates


@plan.command()
def schema() -> None:
    """Print the plan's JSON Schema (for editors: `warden plan schema > plan.schema.json`)."""
    click.echo(json.dumps(plan_json_schema(), indent=2))


@plan.command()
@json_option
def templates(as_json: bool) -> None:
    """List the built-in metric check templates."""
    from warden.models.templates import TEMPLATES

    rows = [
        {"name": name, "description": description}
        for name, (_, description) in sorted(TEMPLATES.items())
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<26} {row['description']}")

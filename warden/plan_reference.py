"""Render the plan file reference (docs/plan-reference.md) from the models themselves.

`python -m warden.plan_reference > docs/plan-reference.md`; a test keeps the file in sync.
"""

from __future__ import annotations

import types
import typing
from datetime import timedelta
from enum import Enum
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from warden.models.common import format_duration
from warden.models.contract import ContractSpec, HeaderValue
from warden.models.flags import FlagRamp
from warden.models.metrics import HttpJsonQuery, MetricCheck, PrometheusQuery, ScrapeQuery
from warden.models.plan import Contact, ReleasePlan, RollbackSpec, Stage
from warden.models.reports import GoNoGoSpec, PilotHealthSpec, ReportsSpec
from warden.models.signoff import SignoffSpec
from warden.models.smoke import SmokeCheck
from warden.models.templates import TEMPLATES

SECTIONS: list[tuple[type[BaseModel], str]] = [
    (ReleasePlan, "The plan (top level)"),
    (Contact, "`contacts[]`"),
    (RollbackSpec, "`rollback`"),
    (ReportsSpec, "`reports` (docs/reports.md)"),
    (GoNoGoSpec, "`reports.go_no_go`"),
    (PilotHealthSpec, "`reports.pilot_health`"),
    (Stage, "`stages[]`"),
    (SmokeCheck, "`stages[].smoke[]`"),
    (FlagRamp, "`stages[].flags[]`"),
    (ContractSpec, "`stages[].contract`"),
    (HeaderValue, "`stages[].contract.headers.<name>`"),
    (MetricCheck, "`stages[].checks[]`"),
    (PrometheusQuery, "`checks[].query` with `provider: prometheus`"),
    (ScrapeQuery, "`checks[].query` with `provider: scrape`"),
    (HttpJsonQuery, "`checks[].query` with `provider: http-json`"),
    (SignoffSpec, "`stages[].signoff`"),
]

HEADER = """# Plan file reference

A release plan is one YAML (or JSON) file. `warden plan validate plan.yaml` checks it and
prints one line per problem; `warden plan schema > plan.schema.json` gives editors its JSON
Schema. Unknown keys are errors. Durations are seconds or strings like `500ms`, `30s`, `5m`,
`2h`, `1d`, `1h30m`. `${VAR}` and `${VAR:-default}` are replaced from the environment before
the file is read (`$${VAR}` keeps the text literally).

This page is generated from the models (`python -m warden.plan_reference`); a test fails
when it is out of date.
"""


def type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if annotation is timedelta:
        return "duration"
    if annotation is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in get_args(annotation))
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if origin is typing.Annotated:
        return type_name(get_args(annotation)[0])
    if origin is list:
        return f"list of {type_name(get_args(annotation)[0])}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"map {type_name(key)} → {type_name(value)}"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if value is PydanticUndefined or value is None:
        return "—"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, BaseModel):
        return "defaults"
    if value in ([], {}):
        return "empty"
    if value == "":
        return '`""`'
    return f"`{value}`"


def section(model: type[BaseModel], title: str) -> str:
    lines = [f"## {title}", ""]
    first = (model.__doc__ or "").strip().split("\n\n")[0]
    doc = " ".join(line.strip() for line in first.splitlines())
    if doc:
        lines += [doc, ""]
    lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key == "provider":
            continue
        description = (field.description or "").replace("\n", " ").replace("|", "\\|")
        lines.append(
            f"| `{key}` | {type_name(field.annotation)} | {default_text(field)} | {description} |"
        )
    return "\n".join(lines)


def templates_section() -> str:
    lines = [
        "## Built-in check templates",
        "",
        "Use one with `template: <name>` in `checks[]`; any field you set overrides the template's,",
        "and `params` tunes it (`threshold`, `metric`, `provider: scrape|prometheus`, `selector`, `window`).",
        "",
        "| template | what it watches |",
        "| --- | --- |",
    ]
    for name, (_, description) in sorted(TEMPLATES.items()):
        lines.append(f"| `{name}` | {description} |")
    return "\n".join(lines)


def render() -> str:
    parts = [HEADER.strip()]
    parts += [section(model, title) for model, title in SECTIONS]
    parts.append(templates_section())
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())

"""The release plan: one YAML file, validated here, the single source of its JSON Schema and docs."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlparse

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from warden.models.common import Duration, StrictModel, short_repr
from warden.models.contract import ContractSpec
from warden.models.flags import FLAG_KEY_PATTERN, FlagRamp
from warden.models.governance import USER_PATTERN
from warden.models.metrics import MetricCheck
from warden.models.reports import ReportsSpec
from warden.models.signoff import SignoffSpec
from warden.models.smoke import SmokeCheck

NAME_PATTERN = r"^[a-z0-9][a-z0-9\-]{0,62}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-_+]{0,63}$"
DEFAULT_STAGE_ORDER = ("dev", "staging", "pilot", "production")
#: Stages in these environments start only when the governance file's version is signed off.
PRODUCTION_ENVIRONMENTS = frozenset({"production", "prod"})
#: `version: 2` is read as the version "2" (a float like 1.10 is refused); the schema says so too.
_VERSION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": VERSION_PATTERN},
        {"type": "integer", "minimum": 0, "maximum": 10**64 - 1},
    ]
}


class Contact(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(
        default="", max_length=200, description="e.g. release manager, tech lead, operations."
    )
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=50)
    im: str | None = Field(default=None, max_length=200, description="IM handle or group.")
    emergency: bool = Field(
        default=False, description="Listed as an emergency contact in the release notes."
    )


class RollbackSpec(StrictModel):
    scope: Literal["release", "stage"] = Field(
        default="release",
        description="'release': restore every flag the release changed, in every environment; 'stage': only the failing stage's environment.",
    )


class Stage(StrictModel):
    """One environment the release walks through, with the gates that must hold there."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Stage name, unique in the plan (e.g. dev, staging, pilot, production).",
    )
    environment: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Flag environment; defaults to the stage name.",
    )
    base_url: str = Field(description="http(s) URL of the service in this stage.")
    smoke: list[SmokeCheck] = Field(default_factory=list, description="HTTP probes run first.")
    contract: ContractSpec | None = Field(
        default=None,
        description="Contract tests (checklist item 1), run after the stage's flags are on.",
    )
    checks: list[MetricCheck] = Field(
        default_factory=list,
        description="Metric checks: before promotion (item 3) and as guards during flag steps and bakes.",
    )
    flags: list[FlagRamp] = Field(
        default_factory=list, description="Flags this stage opens, step by step."
    )
    signoff: SignoffSpec | None = Field(
        default=None, description="Committee sign-off (item 4), the stage's last gate."
    )
    bake: Duration = Field(default=timedelta(0), description="Guarded soak after the flag steps.")
    pilot: bool | None = Field(
        default=None,
        description="A pilot stage: daily pilot health reports while it runs, and a go/no-go at its sign-off; default: the stage named pilot.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if any(c.isspace() or not c.isprintable() for c in value):
            # urlparse drops tabs and newlines silently; the URL would be used as written
            raise ValueError(
                f"{short_repr(value)} is not an http(s) URL (it has spaces or control characters)"
            )
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{short_repr(value)} is not an http(s) URL")
        try:
            _ = parsed.port
        except ValueError as exc:
            raise ValueError(f"{short_repr(value)} has an invalid port") from exc
        return value.rstrip("/")

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: ModelWrapValidatorHandler[Stage]) -> Stage:
        return with_rule_problems(data, handler, _stage_rules)

    @property
    def env(self) -> str:
        return self.environment or self.name

    @property
    def is_production(self) -> bool:
        return self.env in PRODUCTION_ENVIRONMENTS

    @property
    def is_pilot(self) -> bool:
        return self.pilot if self.pilot is not None else self.name == "pilot"

    def guard_checks(self) -> list[MetricCheck]:
        return [c for c in self.checks if "guard" in c.phases]

    def pre_checks(self) -> list[MetricCheck]:
        return [c for c in self.checks if "pre" in c.phases]


class ReleasePlan(StrictModel):
    """A release: which service and version, who owns it, and the stages it must pass."""

    service: str = Field(
        pattern=NAME_PATTERN, description="Service name: lowercase letters, digits, '-'."
    )
    version: Annotated[str, WithJsonSchema(_VERSION_SCHEMA)] = Field(
        pattern=VERSION_PATTERN, description='Quote it in YAML ("1.10" is not 1.1).'
    )
    owner: str = Field(
        min_length=1, max_length=200, description="Who owns the release (a user name)."
    )
    description: str = Field(
        default="", max_length=5000, description="What the release changes, for release notes."
    )
    flags: list[str] = Field(
        default_factory=list,
        description="Every flag the release touches; each must exist in the flag backend before it starts.",
    )
    contacts: list[Contact] = Field(
        default_factory=list, description="People in the release notes."
    )
    im_channels: list[str] = Field(
        default_factory=list, description="IM channels in scope, for release notes."
    )
    rollback: RollbackSpec = Field(
        default_factory=RollbackSpec, description="What a rollback restores."
    )
    reports: ReportsSpec = Field(
        default_factory=ReportsSpec,
        description="The go/no-go and pilot health reports (docs/reports.md).",
    )
    stages: list[Stage] = Field(
        min_length=1, description="In order; each must pass before the next starts."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            if value.bit_length() > 256:  # longer than any version; str() refuses past 4300 digits
                raise ValueError("a version has at most 64 characters; quote it")
            return str(value)
        if isinstance(value, float):
            raise ValueError(
                f'quote the version (version: "{value}"); YAML reads {value} as a number'
            )
        return value

    @field_validator("flags")
    @classmethod
    def _flag_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            # fullmatch: with re.match, '$' also matches before a trailing newline
            if not re.fullmatch(FLAG_KEY_PATTERN, key):
                raise ValueError(f"{short_repr(key)} is not a flag key")
        if len(set(value)) != len(value):
            raise ValueError("a flag is listed twice")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(
        cls, data: Any, handler: ModelWrapValidatorHandler[ReleasePlan]
    ) -> ReleasePlan:
        return with_rule_problems(data, handler, _plan_rules)

    def go_no_go_stages(self) -> list[str]:
        """Stages whose sign-off gets a go/no-go report: the plan's list, else the pilot stages."""
        listed = self.reports.go_no_go.stages
        if listed is not None:
            return list(listed)
        return [s.name for s in self.stages if s.is_pilot and s.signoff is not None]

    @property
    def release_id(self) -> str:
        return release_id(self.service, self.version)

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def environments(self) -> list[str]:
        seen: list[str] = []
        for stage in self.stages:
            if stage.env not in seen:
                seen.append(stage.env)
        return seen


# -- rules across fields, checked on the document as written ------------------------------------
#
# A rule that spans fields (duplicate stage names, undeclared flags) used to run only once every
# field was valid, so fixing one problem revealed the next. These read the raw document, as far
# as it can be read, and their problems are reported together with the fields' own.

Rule = tuple[tuple[str | int, ...], str]


def _texts(values: Any, key: str | None = None) -> list[str]:
    """The strings in a list (or each item's `key`), skipping what is not text."""
    if not isinstance(values, list):
        return []
    items = [v.get(key) if isinstance(v, dict) else None for v in values] if key else values
    return [v for v in items if isinstance(v, str)]


def _twice(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def _stage_rules(data: dict[str, Any]) -> list[Rule]:
    problems: list[Rule] = []
    gates = [data.get(k) not in (None, []) for k in ("smoke", "checks", "flags")]
    gates += [data.get(k) is not None for k in ("contract", "signoff")]
    if not any(gates):
        name = data.get("name")
        shown = repr(name) if isinstance(name, str) else "this stage"
        problems.append(
            (
                (),
                f"stage {shown} is empty: give it smoke checks, a contract, checks, flags or a signoff",
            )
        )
    dupes = _twice(_texts(data.get("checks"), "name"))
    if dupes:
        problems.append((("checks",), f"check name(s) used twice: {', '.join(dupes)}"))
    dupes = _twice(_texts(data.get("flags"), "flag"))
    if dupes:
        problems.append((("flags",), f"flag(s) ramped twice in one stage: {', '.join(dupes)}"))
    return problems


def _plan_rules(data: dict[str, Any]) -> list[Rule]:
    problems: list[Rule] = []
    stages = data.get("stages")
    dupes = _twice(_texts(stages, "name"))
    if dupes:
        problems.append((("stages",), f"duplicate stage name(s): {', '.join(dupes)}"))
    declared = data.get("flags", [])
    if isinstance(declared, list) and isinstance(stages, list):
        known = set(_texts(declared))
        for index, stage in enumerate(stages):
            if not isinstance(stage, dict):
                continue
            undeclared = [f for f in _texts(stage.get("flags"), "flag") if f not in known]
            if undeclared:
                name = stage.get("name")
                shown = repr(name) if isinstance(name, str) else f"{index}"
                problems.append(
                    (
                        ("stages", index, "flags"),
                        f"stage {shown} ramps {', '.join(undeclared)} which the plan's "
                        "top-level 'flags' does not list",
                    )
                )
    problems += _report_rules(data, stages)
    return problems


def _report_rules(data: dict[str, Any], stages: Any) -> list[Rule]:
    """The go/no-go is reported to a stage's sign-off: the stages it names must have one."""
    reports = data.get("reports")
    go_no_go = reports.get("go_no_go") if isinstance(reports, dict) else None
    named = go_no_go.get("stages") if isinstance(go_no_go, dict) else None
    if not isinstance(named, list) or not isinstance(stages, list):
        return []
    by_name = {s.get("name"): s for s in stages if isinstance(s, dict)}
    problems: list[Rule] = []
    for index, name in enumerate(named):
        if not isinstance(name, str):
            continue
        where = ("reports", "go_no_go", "stages", index)
        if name not in by_name:
            problems.append(
                (where, f"reports.go_no_go.stages names {name!r}, which is not a stage")
            )
        elif not by_name[name].get("signoff"):
            problems.append(
                (
                    where,
                    f"reports.go_no_go.stages names {name!r}, which has no signoff to report to",
                )
            )
    return problems


M = TypeVar("M")


def with_rule_problems(
    data: Any, handler: Callable[[Any], M], rules: Callable[[dict[str, Any]], list[Rule]]
) -> M:
    """Validate `data`; a rule's problems are reported in the same pass as the fields' own."""
    found = rules(data) if isinstance(data, dict) else []
    try:
        value = handler(data)
    except ValidationError as exc:
        if not found:
            raise
        errors = [_again(e) for e in exc.errors(include_url=False)]
        said = {e["msg"].removeprefix("Value error, ") for e in exc.errors(include_url=False)}
        errors += [_rule_error(loc, text, data) for loc, text in found if text not in said]
        raise ValidationError.from_exception_data(exc.title, errors) from None
    if found:
        raise ValidationError.from_exception_data(
            type(value).__name__, [_rule_error(loc, text, data) for loc, text in found]
        )
    return value


def _again(error: Any) -> InitErrorDetails:
    """A line of a ValidationError, raised again as it was (its message already rendered)."""
    context = {
        k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, str | int | float)
    }
    # The context goes back for readers (the pattern of a mismatch). pydantic fills `{key}` for
    # each context key: a rendered message of these types holds none (only a value error echoes
    # the input, and its context, an exception, is not kept).
    return InitErrorDetails(
        type=PydanticCustomError(error["type"], error["msg"], context or None),
        loc=tuple(error["loc"]),
        input=error.get("input"),
    )


def _rule_error(loc: tuple[str | int, ...], text: str, data: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("value_error", "Value error, {error}", {"error": text}),
        loc=loc,
        input=data,
    )


def release_id(service: str, version: str) -> str:
    """Workflow ids come from the business: `release-<service>-<version>`."""
    return f"release-{service}-{version}"


class PlanError(ValueError):
    """A plan that cannot be used; `problems` holds one readable line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


_PATTERN_HINTS = {
    NAME_PATTERN: "use lowercase letters, digits and '-', starting with a letter or digit (e.g. support-desk)",
    VERSION_PATTERN: "use letters, digits and . - _ + (e.g. 1.4.0 or 2026.11.1-rc1)",
    FLAG_KEY_PATTERN: "a flag key: letters, digits and . _ - (e.g. ai.solutions)",
    USER_PATTERN: "a user name: letters, digits and . _ @ -, starting with a letter or digit",
}
_LENGTH_BOUND = re.compile(r"\{0,(\d+)\}\$$")


def _pattern_problem(value: Any, pattern: str, fallback: str) -> str:
    """Why a text does not fit its pattern: too long (saying the limit), or which characters."""
    hint = _PATTERN_HINTS.get(pattern)
    bound = _LENGTH_BOUND.search(pattern)
    if isinstance(value, str) and bound and len(value) > int(bound.group(1)) + 1:
        limit = int(bound.group(1)) + 1
        shorter = re.fullmatch(pattern, value[:limit]) is not None
        return f"{short_repr(value)} is too long: {len(value)} characters, at most {limit}" + (
            "" if shorter or not hint else f"; {hint}"
        )
    return f"{short_repr(value)} is not allowed here" + (f"; {hint}" if hint else f" ({fallback})")


def _not_text(value: Any) -> str | None:
    """For a value that is not text where text belongs: what it is, and to quote it."""
    if isinstance(value, bool):
        shown = "true" if value else "false"
        return f"{shown} is a boolean, not text (YAML also reads yes/no and on/off so); quote it"
    if isinstance(value, int | float):
        return f"{value!r} is a number, not text; quote it"
    if value is None:
        return "there is no value here (null, ~ or nothing); give one, quoted if it is text"
    if isinstance(value, date):
        return f"{value.isoformat()} is a date, not text; quote it"
    return None


#: Problems listed one per line; past this many, one more line says how many were left out.
MAX_PROBLEMS = 50
#: Longest problem line; user input echoed back is shortened to fit.
MAX_PROBLEM_LENGTH = 500


def _loc_part(part: int | str) -> str:
    """A path element as the user wrote it; odd keys (newlines, very long) are quoted and cut."""
    text = str(part)
    if len(text) > 60 or not text.isprintable():
        return short_repr(text)
    return text


def format_validation_error(exc: ValidationError, data: Any = None) -> list[str]:
    """One line per problem: `stages.1 (pilot).base_url: 'ftp://x' is not an http(s) URL`."""
    stage_names: list[Any] = []
    if isinstance(data, dict) and isinstance(data.get("stages"), list):
        stage_names = [s.get("name") if isinstance(s, dict) else None for s in data["stages"]]
    lines = []
    errors = exc.errors(include_url=False, include_input=True)
    for err in errors[:MAX_PROBLEMS]:
        parts = [_loc_part(p) for p in err["loc"] if not str(p).startswith("function-")]
        if err["type"] == "value_error" and not parts and "duplicate stage" in err["msg"]:
            parts = ["stages"]
        if len(parts) >= 2 and parts[0] == "stages" and parts[1].isdigit():
            index = int(parts[1])
            if index < len(stage_names) and isinstance(stage_names[index], str):
                parts[1] = f"{index} ({_loc_part(stage_names[index])})"
        loc = ".".join(parts)
        # discriminated unions and validators add their own tags to the path; keep the user's view
        loc = loc.replace(".prometheus.", ".").replace(".scrape.", ".").replace(".http-json.", ".")
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "string_pattern_mismatch":
            pattern = str((err.get("ctx") or {}).get("pattern"))
            message = _pattern_problem(err["input"], pattern, message)
        elif err["type"] == "string_type":
            message = _not_text(err.get("input")) or message
        line = f"{loc or '(plan)'}: {' '.join(message.splitlines())}"
        lines.append(
            line if len(line) <= MAX_PROBLEM_LENGTH else line[: MAX_PROBLEM_LENGTH - 3] + "..."
        )
    if len(errors) > MAX_PROBLEMS:
        lines.append(
            f"(plan): {len(errors) - MAX_PROBLEMS} more problem(s) not shown; fix these first"
        )
    return lines


#: No plan nests anywhere near this deep; deeper documents are refused before validation walks
#: them (recursion deep inside validation can fail where it cannot be caught, e.g. in a repr).
MAX_NESTING = 64


def too_deep(data: Any, limit: int = MAX_NESTING) -> list[Any] | None:
    """The path to the first list or mapping nested more than `limit` deep in `data`, found
    without recursion; None when there is none."""
    seen: set[int] = set()  # YAML aliases share containers: each is walked once
    stack: list[tuple[Any, list[Any]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if not isinstance(value, dict | list) or id(value) in seen:
            continue
        seen.add(id(value))
        if len(path) >= limit:
            return path
        items = value.items() if isinstance(value, dict) else enumerate(value)
        stack.extend((child, [*path, key]) for key, child in items)
    return None


def parse_plan(data: Any, source: str = "plan") -> ReleasePlan:
    if not isinstance(data, dict):
        raise PlanError(
            source, ["(plan): the plan must be a mapping with service, version, owner and stages"]
        )
    deep = too_deep(data)
    if deep is not None:
        parts = [_loc_part(p) for p in deep[:6]]
        if len(parts) >= 2 and parts[0] == "stages" and isinstance(deep[1], int):
            stage = data["stages"][deep[1]]
            if isinstance(stage, dict) and isinstance(stage.get("name"), str):
                parts[1] = f"{deep[1]} ({_loc_part(stage['name'])})"
        where = ".".join(parts) + (".…" if len(deep) > 6 else "")
        raise PlanError(source, [f"{where}: nested too deeply (more than {MAX_NESTING} levels)"])
    try:
        return ReleasePlan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(source, format_validation_error(exc, data)) from None
    except RecursionError:  # a validator that walks a deeply nested value (e.g. repr of it)
        raise PlanError(source, ["(plan): the document is nested too deeply"]) from None


_ENV_REF = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """`${VAR}` and `${VAR:-default}` from the environment; `$${VAR}` stays literal."""
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        line = text.count("\n", 0, match.start()) + 1
        problems.append(
            f"line {line}: environment variable {name} is not set (or write ${{{name}:-default}})"
        )
        return ""

    return _ENV_REF.sub(replace, text), problems


#: Values a plan file may hold once YAML aliases are expanded: a real plan has a few hundred, and
#: nested aliases ("billion laughs") would otherwise make validation run for hours.
MAX_PLAN_VALUES = 100_000


def _one_line(text: str) -> str:
    line = " ".join(text.splitlines())
    return line if len(line) <= MAX_PROBLEM_LENGTH else line[: MAX_PROBLEM_LENGTH - 3] + "..."


_SURROGATE = re.compile("[\ud800-\udfff]")
#: How a number is written when it reads back as itself: YAML 1.1 also reads `010` (octal 8),
#: `0x1F`, `0b101`, `1_000` and `1:20` (base 60: 80) as integers, which silently changes a
#: version (`version: 010` would be "8") or a duration (`bake: 1:30` would be 90 seconds).
_PLAIN_INT = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
_PLAIN_FLOAT = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)


def _number_kind(text: str) -> str:
    bare = text.lstrip("+-").lower()
    if ":" in bare:
        return "a base-60 number"
    if "_" in bare:
        return "a number (YAML drops the '_')"
    if bare.startswith("0x"):
        return "a hexadecimal number"
    if bare.startswith("0b"):
        return "a binary number"
    if text.startswith("+"):
        return "a number (without its '+')"
    return "an octal number"


@cache
def _plan_loader() -> type:
    """yaml.SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last)."""
    import yaml

    class PlanLoader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            #: Numbers YAML reads as a value other than they are written, one line each.
            self.number_problems: list[str] = []

        def _as_written(self, node: Any, value: Any, plain: re.Pattern[str]) -> Any:
            text = str(node.value)
            if node.style is None and not plain.fullmatch(text):
                mark = node.start_mark
                self.number_problems.append(
                    f"line {mark.line + 1}, column {mark.column + 1}: YAML reads {short_repr(text)} "
                    f"as {_number_kind(text)}, {value!r}, not as written; quote it "
                    f'("{text}") if it is text, or write {value!r}'
                )
            return value

        def construct_yaml_int(self, node: Any) -> Any:
            return self._as_written(node, super().construct_yaml_int(node), _PLAIN_INT)

        def construct_yaml_float(self, node: Any) -> Any:
            return self._as_written(node, super().construct_yaml_float(node), _PLAIN_FLOAT)

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
                # explicit tags with values their constructor cannot read (`!!float abc`,
                # `!!timestamp x`) and integers longer than Python reads (over 4300 digits)
                kind = str(node.tag).rsplit(":", 1)[-1]
                value = short_repr(node.value) if isinstance(node.value, str) else "this value"
                raise yaml.constructor.ConstructorError(
                    None, None, f"cannot read {value} as {kind[:30]}", node.start_mark
                ) from None

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            if not isinstance(node, yaml.MappingNode):
                return super().construct_mapping(node, deep=deep)  # reports what it found instead
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # unhashable: the base class reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {short_repr(key)} is written twice", key_node.start_mark
                    )
            return super().construct_mapping(node, deep=deep)

        def construct_yaml_str(self, node: Any) -> str:
            value = str(self.construct_scalar(node))
            if _SURROGATE.search(value):
                # JSON writes characters beyond U+FFFF as "\ud83d\ude80"; PyYAML keeps the two halves
                try:
                    value = value.encode("utf-16", "surrogatepass").decode("utf-16")
                except UnicodeDecodeError:
                    pass  # a lone half: refused later as not text
            return value

    PlanLoader.add_constructor("tag:yaml.org,2002:str", PlanLoader.construct_yaml_str)
    PlanLoader.add_constructor("tag:yaml.org,2002:int", PlanLoader.construct_yaml_int)
    PlanLoader.add_constructor("tag:yaml.org,2002:float", PlanLoader.construct_yaml_float)
    return PlanLoader


def _too_many_values(data: Any) -> bool:
    pending, count = [data], 0
    while pending:
        item = pending.pop()
        count += 1
        if count > MAX_PLAN_VALUES:
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
    return False


def load_plan(path: str | Path, environ: Mapping[str, str] | None = None) -> ReleasePlan:
    """Read a YAML (or JSON) plan file; raise `PlanError` with readable problems."""
    _, data = read_plan(path, environ)
    return parse_plan(data, str(path))


def read_plan(path: str | Path, environ: Mapping[str, str] | None = None) -> tuple[str, Any]:
    """A plan file's text with `${VAR:-default}` expanded, and the document YAML reads from it
    (not validated yet: `parse_plan` does that); raise `PlanError` with readable problems."""
    import os

    import yaml

    source = str(path)
    try:
        content = Path(path).read_bytes()
    except FileNotFoundError:
        raise PlanError(source, ["file not found"]) from None
    except IsADirectoryError:
        raise PlanError(source, ["is a directory, not a plan file"]) from None
    except OSError as exc:
        raise PlanError(source, [_one_line(f"cannot read: {exc.strerror or exc}")]) from None
    try:
        raw = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        column = exc.start - (content.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PlanError(
            source,
            [
                f"line {line}, column {column}: not UTF-8 text (byte 0x{content[exc.start]:02x}); save the file as UTF-8"
            ],
        ) from None
    text, problems = expand_env(raw, os.environ if environ is None else environ)
    if problems:
        raise PlanError(source, [_one_line(p) for p in problems])
    loader = None
    try:
        loader = _plan_loader()(text)  # a SafeLoader subclass; reading starts here
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlanError(source, [_one_line(f"{where}not valid YAML ({problem})")]) from None
    except RecursionError:
        raise PlanError(source, ["(plan): the document is nested too deeply"]) from None
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors raise these for explicit tags with bad values (`!!float abc`,
        # `!!timestamp x`) and for integers too long for Python (over 4300 digits)
        raise PlanError(
            source, [_one_line(f"not valid YAML (a value cannot be read: {exc})")]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    assert loader is not None  # built before anything could be read
    numbers: list[str] = loader.number_problems[:MAX_PROBLEMS]
    if _too_many_values(data):
        raise PlanError(
            source,
            [
                f"(plan): the document holds more than {MAX_PLAN_VALUES:,} values once YAML aliases are expanded"
            ],
        )
    if numbers:
        try:
            parse_plan(data, source)
        except PlanError as exc:  # every problem in one pass: the numbers, then the fields'
            raise PlanError(source, numbers + exc.problems) from None
        raise PlanError(source, numbers)
    return text, data


def plan_json_schema() -> dict[str, Any]:
    schema = ReleasePlan.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Release Warden plan"
    return schema

"""The release plan: one YAML file, validated here, the single source of its JSON Schema and docs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator, model_validator

from warden.models.common import Duration, StrictModel
from warden.models.contract import ContractSpec
from warden.models.flags import FLAG_KEY_PATTERN, FlagRamp
from warden.models.metrics import MetricCheck
from warden.models.signoff import SignoffSpec
from warden.models.smoke import SmokeCheck

NAME_PATTERN = r"^[a-z0-9][a-z0-9\-]{0,62}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-_+]{0,63}$"
DEFAULT_STAGE_ORDER = ("dev", "staging", "pilot", "production")
#: Stages in these environments start only when the governance file's version is signed off.
PRODUCTION_ENVIRONMENTS = frozenset({"production", "prod"})


class Contact(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(default="", max_length=200, description="e.g. release manager, tech lead, operations.")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=50)
    im: str | None = Field(default=None, max_length=200, description="IM handle or group.")
    emergency: bool = Field(default=False, description="Listed as an emergency contact in the release notes.")


class RollbackSpec(StrictModel):
    scope: Literal["release", "stage"] = Field(
        default="release",
        description="'release': restore every flag the release changed, in every environment; 'stage': only the failing stage's environment.",
    )


class Stage(StrictModel):
    """One environment the release walks through, with the gates that must hold there."""

    name: str = Field(pattern=NAME_PATTERN, description="Stage name, unique in the plan (e.g. dev, staging, pilot, production).")
    environment: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="Flag environment; defaults to the stage name."
    )
    base_url: str = Field(description="http(s) URL of the service in this stage.")
    smoke: list[SmokeCheck] = Field(default_factory=list, description="HTTP probes run first.")
    contract: ContractSpec | None = Field(
        default=None, description="Contract tests (checklist item 1), run after the stage's flags are on."
    )
    checks: list[MetricCheck] = Field(
        default_factory=list,
        description="Metric checks: before promotion (item 3) and as guards during flag steps and bakes.",
    )
    flags: list[FlagRamp] = Field(default_factory=list, description="Flags this stage opens, step by step.")
    signoff: SignoffSpec | None = Field(default=None, description="Committee sign-off (item 4), the stage's last gate.")
    bake: Duration = Field(default=timedelta(0), description="Guarded soak after the flag steps.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        try:
            _ = parsed.port
        except ValueError as exc:
            raise ValueError(f"{value!r} has an invalid port") from exc
        return value.rstrip("/")

    @model_validator(mode="after")
    def _not_empty(self) -> Stage:
        if not (self.smoke or self.contract or self.checks or self.flags or self.signoff):
            raise ValueError(
                f"stage {self.name!r} is empty: give it smoke checks, a contract, checks, flags or a signoff"
            )
        names = [c.name for c in self.checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"check name(s) used twice: {', '.join(dupes)}")
        flags = [f.flag for f in self.flags]
        dupes = sorted({f for f in flags if flags.count(f) > 1})
        if dupes:
            raise ValueError(f"flag(s) ramped twice in one stage: {', '.join(dupes)}")
        return self

    @property
    def env(self) -> str:
        return self.environment or self.name

    @property
    def is_production(self) -> bool:
        return self.env in PRODUCTION_ENVIRONMENTS

    def guard_checks(self) -> list[MetricCheck]:
        return [c for c in self.checks if "guard" in c.phases]

    def pre_checks(self) -> list[MetricCheck]:
        return [c for c in self.checks if "pre" in c.phases]


class ReleasePlan(StrictModel):
    """A release: which service and version, who owns it, and the stages it must pass."""

    service: str = Field(pattern=NAME_PATTERN, description="Service name: lowercase letters, digits, '-'.")
    version: str = Field(pattern=VERSION_PATTERN, description="Quote it in YAML (\"1.10\" is not 1.1).")
    owner: str = Field(min_length=1, max_length=200, description="Who owns the release (a user name).")
    description: str = Field(default="", max_length=5000, description="What the release changes, for release notes.")
    flags: list[str] = Field(
        default_factory=list,
        description="Every flag the release touches; each must exist in the flag backend before it starts.",
    )
    contacts: list[Contact] = Field(default_factory=list, description="People in the release notes.")
    im_channels: list[str] = Field(default_factory=list, description="IM channels in scope, for release notes.")
    rollback: RollbackSpec = Field(default_factory=RollbackSpec, description="What a rollback restores.")
    stages: list[Stage] = Field(min_length=1, description="In order; each must pass before the next starts.")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            raise ValueError(f"quote the version (version: \"{value}\"); YAML reads {value} as a number")
        return value

    @field_validator("flags")
    @classmethod
    def _flag_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if not re.match(FLAG_KEY_PATTERN, key):
                raise ValueError(f"{key!r} is not a flag key")
        if len(set(value)) != len(value):
            raise ValueError("a flag is listed twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ReleasePlan:
        names = [s.name for s in self.stages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate stage name(s): {', '.join(dupes)}")
        declared = set(self.flags)
        for stage in self.stages:
            undeclared = [r.flag for r in stage.flags if r.flag not in declared]
            if undeclared:
                raise ValueError(
                    f"stage {stage.name!r} ramps {', '.join(undeclared)} which the plan's top-level 'flags' does not list"
                )
        return self

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
}


def format_validation_error(exc: ValidationError, data: Any = None) -> list[str]:
    """One line per problem: `stages.1 (pilot).base_url: 'ftp://x' is not an http(s) URL`."""
    stage_names: list[Any] = []
    if isinstance(data, dict) and isinstance(data.get("stages"), list):
        stage_names = [s.get("name") if isinstance(s, dict) else None for s in data["stages"]]
    lines = []
    for err in exc.errors(include_url=False):
        parts = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
        if err["type"] == "value_error" and not parts and "duplicate stage" in err["msg"]:
            parts = ["stages"]
        if len(parts) >= 2 and parts[0] == "stages" and parts[1].isdigit():
            index = int(parts[1])
            if index < len(stage_names) and isinstance(stage_names[index], str):
                parts[1] = f"{index} ({stage_names[index]})"
        loc = ".".join(parts)
        # discriminated unions and validators add their own tags to the path; keep the user's view
        loc = loc.replace(".prometheus.", ".").replace(".scrape.", ".").replace(".http-json.", ".")
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "string_pattern_mismatch":
            hint = _PATTERN_HINTS.get(str((err.get("ctx") or {}).get("pattern")))
            message = f"{err['input']!r} is not allowed here" + (f"; {hint}" if hint else f" ({message})")
        lines.append(f"{loc or '(plan)'}: {message}")
    return lines


def parse_plan(data: Any, source: str = "plan") -> ReleasePlan:
    if not isinstance(data, dict):
        raise PlanError(source, ["(plan): the plan must be a mapping with service, version, owner and stages"])
    try:
        return ReleasePlan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(source, format_validation_error(exc, data)) from None


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
        problems.append(f"line {line}: environment variable {name} is not set (or write ${{{name}:-default}})")
        return ""

    return _ENV_REF.sub(replace, text), problems


def load_plan(path: str | Path, environ: Mapping[str, str] | None = None) -> ReleasePlan:
    """Read a YAML (or JSON) plan file; raise `PlanError` with readable problems."""
    import os

    import yaml

    source = str(path)
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(source, ["file not found"]) from None
    except IsADirectoryError:
        raise PlanError(source, ["is a directory, not a plan file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(source, [f"cannot read: {exc}"]) from None
    text, problems = expand_env(raw, os.environ if environ is None else environ)
    if problems:
        raise PlanError(source, problems)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlanError(source, [f"{where}not valid YAML ({problem})"]) from None
    except RecursionError:
        raise PlanError(source, ["the document is nested too deeply"]) from None
    return parse_plan(data, source)


def plan_json_schema() -> dict[str, Any]:
    schema = ReleasePlan.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Release Warden plan"
    return schema

"""Smoke checks: plain HTTP probes against a stage's base URL."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, field_validator

from warden.models.common import Duration, Record, StrictModel

_STATUS = {"type": "integer", "minimum": 100, "maximum": 599}
#: `expect_status: 200` is as valid as `expect_status: [200, 204]`; the schema says so too.
_STATUS_SCHEMA: dict[str, Any] = {
    "anyOf": [_STATUS, {"type": "array", "items": _STATUS, "minItems": 1}]
}


class SmokeCheck(StrictModel):
    """One HTTP probe. `path` is relative to the stage's `base_url`, or an absolute URL."""

    name: str = Field(min_length=1, max_length=100)
    path: str = Field(
        default="/",
        min_length=1,
        max_length=2000,
        description="Relative to base_url, or an absolute URL.",
    )
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"] = "GET"
    expect_status: Annotated[list[int], WithJsonSchema(_STATUS_SCHEMA)] = Field(
        default_factory=lambda: [200],
        min_length=1,
        description="Accepted status code(s): one number or a list.",
    )
    contains: str | None = Field(default=None, description="Text the response body must contain.")
    timeout: Duration = Field(default=timedelta(seconds=5), description="Per request.")

    @field_validator("expect_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("expect_status")
    @classmethod
    def _valid_statuses(cls, value: list[int]) -> list[int]:
        for status in value:
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status code (100-599)")
        return value

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("timeout must be greater than zero")
        return value


class SmokeResult(Record):
    name: str
    url: str
    ok: bool
    status: int | None = None
    elapsed_ms: float | None = None
    error: str | None = None


class SmokeReport(Record):
    passed: bool
    results: list[SmokeResult] = Field(default_factory=list)

    def summary(self) -> str:
        failed = [r for r in self.results if not r.ok]
        if not failed:
            return f"{len(self.results)} smoke check(s) passed"
        return "; ".join(f"{r.name}: {r.error or f'HTTP {r.status}'} ({r.url})" for r in failed)


class SmokeInput(Record):
    release_id: str
    stage: str
    base_url: str
    checks: list[SmokeCheck]
    trace_id: str

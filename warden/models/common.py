"""Building blocks shared by every model: strict base classes and a human duration type."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# re.ASCII: only 0-9 are digits here (Python's \d also matches '٥' and '５', which float() reads)
_DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*)+$", re.ASCII)
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.ASCII)
_ISO_RE = re.compile(r"^-?P")
_MAX_DURATION = timedelta(days=366)
_ISO_SCHEMA_PATTERN = (
    r"^\s*P(?=\d|T\d)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
    r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?\s*$"
)


def format_time(value: datetime) -> str:
    """A time as people read it, always with its zone: `2026-11-01 14:30:00 UTC`.

    A time without a zone is taken as UTC (the stores and workflows keep UTC)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class StrictModel(BaseModel):
    """Input models: unknown keys are an error, values are never coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Record(BaseModel):
    """Results and state: tolerant of fields added by newer workers (replay-safe)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def parse_duration(value: Any) -> Any:
    """Accept `90`, `1.5`, `"30s"`, `"5m"`, `"1h30m"`, `"7d"` and ISO 8601 (`"PT30S"`)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '2h'")
    elif isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            raise ValueError("a duration longer than a year is not supported") from None
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise ValueError("a duration cannot be negative")
        if _ISO_RE.match(text):
            return text  # pydantic parses ISO 8601 itself
        if not _DURATION_RE.match(text):
            raise ValueError(
                f"{value!r} is not a duration; use a number of seconds or '500ms', '30s', '5m', '2h', '1d', '1h30m'"
            )
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART_RE.findall(text))
    else:
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '2h'")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError("a duration must be a finite number")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > _MAX_DURATION.total_seconds():
        raise ValueError("a duration longer than a year is not supported")
    return timedelta(seconds=seconds)


def _check_non_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("a duration cannot be negative")
    # ISO 8601 strings ("P400D") are parsed by pydantic, after parse_duration's own limit
    if value > _MAX_DURATION:
        raise ValueError("a duration longer than a year is not supported")
    return value


def short_repr(value: Any, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters, for echoing user input back in one line."""
    cut = isinstance(value, str | bytes) and len(value) > limit
    text = repr(value[:limit] if cut else value)
    return text[: limit - 3] + "..." if cut or len(text) > limit else text


def format_duration(value: timedelta) -> str:
    """Render a duration the way plans write it: `1h30m`, `45s`, `250ms`."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    if total_ms % 1000:
        return f"{total_ms}ms"
    seconds = total_ms // 1000
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_check_non_negative),
    PlainSerializer(lambda v: v.total_seconds(), return_type=float, when_used="json"),
    WithJsonSchema(
        {
            # what parse_duration accepts: '1h30m' (spaces allowed), ISO 8601 ('PT30S'), seconds
            "anyOf": [
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$"},
                {"type": "string", "pattern": _ISO_SCHEMA_PATTERN},
                {"type": "number", "minimum": 0, "maximum": _MAX_DURATION.total_seconds()},
            ],
            "description": "Duration: seconds, or a string like '500ms', '30s', '5m', '2h', '1d', '1h30m'.",
        }
    ),
]

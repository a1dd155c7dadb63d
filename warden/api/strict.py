"""Strictness the OpenAPI document promises: unknown query parameters and non-ISO times are refused.

A misspelt filter (`?releaseid=`) must not quietly return every audit event, and `since=0.5`
is not a time even though pydantic would read it as seconds since 1970.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_only(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError("use an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


#: Declared query parameter names per route. Routes are not hashable; keeping the route in the
#: entry keeps its id from being reused by another route while the entry exists.
_known: dict[int, tuple[Any, frozenset[str]]] = {}


async def reject_unknown_query(request: Request) -> None:
    """App-wide dependency: every query parameter is one the route declares, given once."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    entry = _known.get(id(route))
    if entry is None or entry[0] is not route:
        entry = _known[id(route)] = (route, frozenset(_query_names(dependant)))
    known = entry[1]
    problems = [
        {"loc": ("query", name), "msg": "unknown query parameter", "type": "unknown_query"}
        for name in dict.fromkeys(request.query_params)
        if name not in known
    ]
    # No parameter of this API is a list: a second value would silently replace the first.
    problems += [
        {"loc": ("query", name), "msg": "given more than once", "type": "repeated_query"}
        for name in dict.fromkeys(request.query_params)
        if name in known and len(request.query_params.getlist(name)) > 1
    ]
    if problems:
        raise RequestValidationError(problems)

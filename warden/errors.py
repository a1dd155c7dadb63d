"""Errors a person can act on, with a kind: each face maps kinds to its own codes in one table.

The CLI turns a kind into an exit code (`warden.cli.common.EXIT_CODES`), the HTTP API into a
status (`warden.api.errors.HTTP_STATUS`); `code` is the name a client branches on (the API's
error `type`), the class name unless the error says otherwise (a workflow's refusal type, say).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Kind(StrEnum):
    INVALID = "invalid"  # the request itself is wrong (bad value, bad plan, unusable id)
    NOT_FOUND = "not_found"  # no such release, access change or flag
    CONFLICT = "conflict"  # it exists already, or is running
    REFUSED = "refused"  # refused by the release or by a rule (self-approval, not paused, ...)
    UNAUTHENTICATED = "unauthenticated"  # no usable identity
    FORBIDDEN = "forbidden"  # the identity lacks the role
    UNAVAILABLE = "unavailable"  # Temporal, a worker or a store does not answer
    BACKEND_FAILED = "backend_failed"  # a backend (the flag service) failed while acting


class WardenError(Exception):
    """An error the user can act on; `kind` says what sort, `code` names it for clients."""

    kind: ClassVar[Kind] = Kind.INVALID

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__


class NotFound(WardenError):
    kind = Kind.NOT_FOUND


class Conflict(WardenError):
    kind = Kind.CONFLICT


class Refused(WardenError):
    kind = Kind.REFUSED


class Unauthenticated(WardenError):
    kind = Kind.UNAUTHENTICATED


class Forbidden(WardenError):
    kind = Kind.FORBIDDEN


class Unavailable(WardenError):
    kind = Kind.UNAVAILABLE


class BackendFailed(WardenError):
    kind = Kind.BACKEND_FAILED

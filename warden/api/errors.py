"""Every error is JSON `{"error": {"type", "message"}}` with a 4xx/5xx status; never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope
from temporalio.service import RPCError, RPCStatusCode

from warden.api.models import ErrorBody, ErrorDetail, FieldProblem
from warden.errors import Kind, WardenError
from warden.models.plan import PlanError
from warden.runtime.client import NO_ANSWER

log = logging.getLogger("warden.api")


#: Each kind of error (`warden.errors.Kind`) answered with one status.
HTTP_STATUS: dict[Kind, int] = {
    Kind.INVALID: 400,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.REFUSED: 409,
    Kind.UNAUTHENTICATED: 401,
    Kind.FORBIDDEN: 403,
    Kind.UNAVAILABLE: 503,
    Kind.BACKEND_FAILED: 502,
}


class ApiError(Exception):
    """An error the API answers with directly: status, a type a client can branch on, a message."""

    def __init__(
        self, status: int, type: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.headers = headers


def error_response(
    request: Request | None,
    status: int,
    type: str,
    message: str,
    *,
    fields: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    if request is not None:
        request_id = getattr(request.state, "request_id", None)
    body = ErrorBody(
        error=ErrorDetail(type=type, message=message, fields=fields, request_id=request_id)
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


def field_problems(errors: Sequence[Any]) -> list[FieldProblem]:
    """pydantic/FastAPI errors as `(location, dotted field, message)`; `body` is a location, not a field."""
    problems = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith("function-")]
        location = (
            loc[0] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else "body"
        )
        if loc and loc[0] == location:
            loc = loc[1:]
        message = str(err.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if err.get("type") == "extra_forbidden" and location == "body":
            message = "unknown field"
        elif err.get("type") == "json_invalid":
            problem = (err.get("ctx") or {}).get("error", "")
            message = f"not valid JSON ({problem})" if problem else "not valid JSON"
            loc = []
        problems.append(
            FieldProblem(location=location, field=".".join(loc) or f"({location})", message=message)
        )
    return problems


def _summary(problems: list[FieldProblem]) -> str:
    shown = "; ".join(f"{p.field}: {p.message}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"invalid request: {shown}{more}"


def type_for_status(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return "Error"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.type, exc.message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = field_problems(exc.errors())
        return error_response(request, 422, "ValidationError", _summary(problems), fields=problems)

    @app.exception_handler(PlanError)
    async def _plan(request: Request, exc: PlanError) -> JSONResponse:
        problems = [
            FieldProblem(
                location="body", field=line.split(": ", 1)[0], message=line.split(": ", 1)[-1]
            )
            for line in exc.problems
        ]
        return error_response(request, 422, "ValidationError", str(exc), fields=problems)

    @app.exception_handler(WardenError)
    async def _warden(request: Request, exc: WardenError) -> JSONResponse:
        status = HTTP_STATUS[exc.kind]
        headers = {"Retry-After": "5"} if status == 503 else None
        return error_response(request, status, exc.code, str(exc), headers=headers)

    @app.exception_handler(RPCError)
    async def _rpc(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
            return error_response(
                request, 400, "TemporalRefused", f"Temporal refused the request: {exc.message}"
            )
        log.warning("Temporal call failed: %s (%s)", exc.message, exc.status)
        if exc.status in NO_ANSWER:
            queue = request.app.state.warden.settings.task_queue
            return error_response(
                request,
                503,
                "NoWorker",
                f"no answer in time ({exc.message}); is a worker polling task queue {queue}? "
                "start one with `warden worker`",
                headers={"Retry-After": "5"},
            )
        return error_response(
            request,
            503,
            "TemporalUnavailable",
            f"Temporal call failed: {exc.message}",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error(
            "database error: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        )
        return error_response(
            request,
            503,
            "DatabaseUnavailable",
            "Release Warden's database (audit trail, access grants) cannot be reached; try again",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else type_for_status(exc.status_code)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return error_response(
            request, exc.status_code, type_for_status(exc.status_code), message, headers=headers
        )


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed

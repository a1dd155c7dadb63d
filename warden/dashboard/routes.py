"""The dashboard's pages under /ui/: sign-in, releases, one release with its actions, health.

Every page and action goes through the same services and identity checks as the API; every
refusal is audited (`auth.refused`, face `dashboard`) and shown as a readable message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from warden.api.auth import DEV_ROLES, dev_identity_allowed
from warden.api.errors import HTTP_STATUS
from warden.api.state import ApiState, api_state
from warden.dashboard.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    Sessions,
    cookie_options,
)
from warden.dashboard.views import actions_for, age, stage_views, version_of, when
from warden.errors import Forbidden, Unauthenticated, Unavailable, WardenError
from warden.models.governance import USER_PATTERN
from warden.models.release import (
    AbortRequest,
    ControlRequest,
    DecisionRequest,
    ReleaseState,
    ReleaseStatus,
)
from warden.models.reports import ReportKind
from warden.services.health import HealthService, alert_events, error_events
from warden.services.identity import AUTH_REFUSED
from warden.services.reports import ReportService
from warden.stores.governance import Principal, hash_token

log = logging.getLogger("warden.dashboard")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.globals.update(age=age, when=when)
STATES = [s.value for s in ReleaseState]
PAGE_SIZE = 25
MAX_PLANS = 1000

router = APIRouter(prefix="/ui", include_in_schema=False)


class DashboardState:
    """What the dashboard keeps beside the API's state: the session signer and the health cards."""

    def __init__(self, api: ApiState) -> None:
        self.api = api
        self.sessions = Sessions(api.settings)
        self._health: HealthService | None = None
        #: plans by release id (a release's plan never changes): the thresholds beside its charts
        self.plans: dict[str, Any] = {}
        self._errors: tuple[float, list[Any]] | None = None
        self._errors_lock = asyncio.Lock()

    async def error_events(self) -> list[Any]:
        """The error events of the audit trail, read at most once a second for every viewer."""
        async with self._errors_lock:
            if self._errors is not None and time.monotonic() - self._errors[0] < 1.0:
                return self._errors[1]
            events = await run_in_threadpool(error_events, self.api.audit_trail())
            self._errors = (time.monotonic(), events)
            return events

    def health(self) -> HealthService:
        if self._health is None:
            self._health = HealthService(self.api.settings)
        return self._health

    async def aclose(self) -> None:
        if self._health is not None:
            await self._health.aclose()


def dashboard(request: Request) -> DashboardState:
    state: DashboardState = request.app.state.dashboard
    return state


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


class Refusal(Exception):
    """A refusal shown as a page (or a message, for an htmx request) with its status."""

    def __init__(self, status: int, title: str, message: str) -> None:
        self.status = status
        self.title = title
        self.message = message


# -- who is signed in ---------------------------------------------------------------------------


async def _audit_refusal(
    request: Request, result: str, user: str, reason: str, permission: str | None = None
) -> None:
    api = api_state(request)
    api.metrics.auth_denied.labels(result).inc()
    await api.record(
        request,
        AUTH_REFUSED,
        result,
        user=user[:200],
        release_id=request.path_params.get("release_id"),
        details={
            "face": "dashboard",
            "permission": permission,
            "path": request.url.path,
            "reason": reason,
            "client": request.client.host if request.client else None,
        },
    )


def _session(request: Request) -> Session | None:
    return dashboard(request).sessions.read(request.cookies.get(COOKIE))


async def _principal(request: Request, session: Session) -> Principal:
    api = api_state(request)
    if session.kind == "dev":
        if not dev_identity_allowed(api.settings) or api.auth.identity.governance() is not None:
            raise Unauthenticated("dev sign-in is off here: sign in with your token")
        return Principal(session.subject, DEV_ROLES, dev_identity=True)
    return await run_in_threadpool(api.auth.identity.from_token_digest, session.subject)


async def signed_in(request: Request, permission: str = "release.view") -> Principal:
    """The signed-in user, allowed `permission`; otherwise off to the sign-in page (no session)
    or a 403 refusal (audited)."""
    session = _session(request)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    current = request.headers.get("hx-current-url")
    if request.headers.get("hx-request") and current:
        # a fragment's poll: come back to the page it was polled from
        parts = urlsplit(current)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    if session is None:
        raise Redirect(f"/ui/signin?next={quote(target)}")
    try:
        principal = await _principal(request, session)
    except Unauthenticated as exc:
        await _audit_refusal(request, "unauthenticated", "anonymous", str(exc), permission)
        raise Redirect(f"/ui/signin?next={quote(target)}&expired=1") from None
    request.state.user = principal.name
    request.state.session = session
    try:
        api_state(request).auth.identity.authorize(principal, permission)
    except Forbidden as exc:
        await _audit_refusal(request, "forbidden", principal.name, str(exc), permission)
        raise Refusal(403, "Not allowed", str(exc)) from None
    return principal


async def checked_post(request: Request, permission: str, csrf: str | None) -> Principal:
    """A POST: the session's CSRF token first, then the user and their permission."""
    session = _session(request)
    if session is None:
        await _audit_refusal(request, "unauthenticated", "anonymous", "no session", permission)
        raise Refusal(401, "Signed out", "your session has ended: sign in again")
    sent = csrf or request.headers.get(CSRF_HEADER)
    origin = request.headers.get("origin")
    if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
        await _audit_refusal(
            request, "forbidden", "anonymous", f"cross-site request from {origin}", permission
        )
        raise Refusal(403, "Refused", "a request from another site is refused")
    if not dashboard(request).sessions.csrf_ok(session, sent):
        await _audit_refusal(
            request, "forbidden", "anonymous", "CSRF token missing or wrong", permission
        )
        raise Refusal(
            403, "Refused", "the form is out of date (CSRF check failed): reload the page"
        )
    return await signed_in(request, permission)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    principal: Principal | None = context.get("principal")
    session = getattr(request.state, "session", None)
    context.setdefault(
        "csrf", dashboard(request).sessions.csrf(session) if session is not None else ""
    )
    context.setdefault("trace_id", getattr(request.state, "trace_id", ""))
    context["user"] = principal
    context["now"] = datetime.now(UTC)
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Redirect)
    async def _redirect(request: Request, exc: Redirect) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=200, headers={"HX-Redirect": exc.location})
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, exc: Refusal) -> Response:
        return refusal_response(request, exc.status, exc.title, exc.message)

    # Errors a service raises on a dashboard page are shown as the dashboard shows refusals;
    # everywhere else the API answers them as before.
    for kind in (WardenError, RPCError):
        api_handler = app.exception_handlers.get(kind)
        if api_handler is None:
            continue

        async def _on_ui(
            request: Request, exc: Exception, api_handler: Any = api_handler
        ) -> Response:
            answer: Response = await api_handler(request, exc)
            if not request.url.path.startswith("/ui/"):
                return answer
            try:
                message = json.loads(bytes(answer.body))["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = str(exc)
            return refusal_response(request, answer.status_code, "Not available", message)

        app.add_exception_handler(kind, _on_ui)


def refusal_response(request: Request, status: int, title: str, message: str) -> Response:
    """htmx requests get a message in the page's flash area (whatever element asked: a poll
    keeps polling); a JSON client gets the API's error body; a browser gets a page."""
    if request.headers.get("hx-request") and not request.headers.get("hx-boosted"):
        response = page(request, "_flash.html", status, level="error", message=message)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    if "application/json" in request.headers.get("accept", "") and not request.headers.get(
        "hx-request"
    ):
        body = {"error": {"type": title.replace(" ", ""), "message": message}}
        return Response(json.dumps(body), status_code=status, media_type="application/json")
    return page(request, "refused.html", status, title=title, message=message)


# -- sign-in ------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    return RedirectResponse("/ui/releases", status_code=303)


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/ui/") and "//" not in target else "/ui/releases"


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(
    request: Request, next: str | None = None, expired: str | None = None
) -> Response:
    api = api_state(request)
    dev = dev_identity_allowed(api.settings) and api.settings.governance_file is None
    message = "your session ended or your token no longer works: sign in again" if expired else ""
    return page(request, "signin.html", dev=dev, next=_safe_next(next), message=message)


@router.post("/signin", response_class=HTMLResponse)
async def signin(
    request: Request,
    token: Annotated[str, Form(max_length=500)] = "",
    user: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    api = api_state(request)
    sessions = dashboard(request).sessions
    dev = dev_identity_allowed(api.settings) and api.settings.governance_file is None
    origin = request.headers.get("origin")
    try:
        if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise Unauthenticated("a sign-in from another site is refused")
        if dev:
            import re

            if not re.match(USER_PATTERN, user.strip()):
                raise Unauthenticated("give a user name (letters, digits, . _ @ -)")
            cookie, _ = sessions.issue("dev", user.strip())
            name = user.strip()
        else:
            principal = await run_in_threadpool(api.auth.identity.from_token, token.strip())
            cookie, _ = sessions.issue("token", hash_token(token.strip()))
            name = principal.name
    except Unauthenticated as exc:
        await _audit_refusal(request, "unauthenticated", user or "anonymous", str(exc))
        return page(
            request,
            "signin.html",
            401,
            dev=dev,
            next=_safe_next(next),
            message=f"Sign-in refused: {exc}",
        )
    except Unavailable as exc:
        return page(request, "signin.html", 503, dev=dev, next=_safe_next(next), message=str(exc))
    request.state.user = name
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        **cookie_options(
            request.url.scheme == "https", int(api.settings.dashboard_session_hours * 3600)
        ),
    )
    return response


@router.post("/signout")
async def signout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    session = _session(request)
    if session is not None and not dashboard(request).sessions.csrf_ok(session, csrf):
        raise Refusal(403, "Refused", "the form is out of date (CSRF check failed)")
    response = RedirectResponse("/ui/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


# -- releases -----------------------------------------------------------------------------------


def _token_text(token: bytes | None) -> str:
    return base64.urlsafe_b64encode(token).decode() if token else ""


def _token_bytes(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.urlsafe_b64decode(text.encode())
    except (binascii.Error, ValueError):
        raise Refusal(400, "Bad page", "that page link is not valid") from None


async def _list_context(
    request: Request,
    service: str | None,
    state: str | None,
    page_token: str | None,
    size: int = PAGE_SIZE,
) -> dict[str, Any]:
    releases = api_state(request).releases()
    try:
        result = await releases.page(
            service=service or None,
            state=state or None,
            page_size=size,
            page_token=_token_bytes(page_token),
        )
    except WardenError as exc:
        raise Refusal(HTTP_STATUS[exc.kind], "Cannot list releases", str(exc)) from None
    running = [r.release_id for r in result.releases if r.workflow_status == "running"]
    steps = await releases.steps(running) if running else {}
    return {
        "releases": result.releases,
        "steps": steps,
        "next_page": _token_text(result.next_page_token),
        "page_token": page_token or "",
        "service": service or "",
        "state": state or "",
        "states": STATES,
        "size": size,
    }


Filter = Annotated[str | None, Query(max_length=100)]
PageSize = Annotated[int, Query(ge=1, le=100)]


@router.get("/releases", response_class=HTMLResponse)
async def releases_page(
    request: Request,
    service: Filter = None,
    state: Filter = None,
    page_token: Annotated[str | None, Query(alias="page", max_length=4000)] = None,
    size: PageSize = PAGE_SIZE,
) -> Response:
    principal = await signed_in(request)
    context = await _list_context(request, service, state, page_token, size)
    return page(request, "releases.html", principal=principal, **context)


@router.get("/releases/rows", response_class=HTMLResponse)
async def releases_rows(
    request: Request,
    service: Filter = None,
    state: Filter = None,
    page_token: Annotated[str | None, Query(alias="page", max_length=4000)] = None,
    size: PageSize = PAGE_SIZE,
) -> Response:
    principal = await signed_in(request)
    context = await _list_context(request, service, state, page_token, size)
    return page(request, "_release_rows.html", principal=principal, **context)


async def _release_context(
    request: Request, release_id: str, principal: Principal, status: ReleaseStatus | None = None
) -> Any:
    state = dashboard(request)
    releases = state.api.releases()
    if status is None:
        try:
            status = await releases.status(release_id)
        except WardenError as exc:
            raise Refusal(HTTP_STATUS[exc.kind], "Cannot show the release", str(exc)) from None
    plan = state.plans.get(release_id)
    if plan is None:
        try:
            plan = await releases.plan(release_id)
            if len(state.plans) >= MAX_PLANS:
                state.plans.pop(next(iter(state.plans)))
            state.plans[release_id] = plan
        except WardenError:
            plan = None
    audit = state.api.audit_trail()
    try:
        from warden.models.audit import AuditQuery

        rows = await run_in_threadpool(
            audit.query, AuditQuery(releaseId=release_id, limit=200, newest=True)
        )
        audit_problem = ""
    except WardenError as exc:
        rows, audit_problem = [], str(exc)
    return {
        "status": status,
        "stages": stage_views(status, plan),
        "actions": actions_for(principal, status),
        "version": version_of(status),
        "audit_rows": list(reversed(rows)),
        "audit_problem": audit_problem,
        "trace_id": status.trace_id,
        "principal": principal,
        "can_audit": _allowed(request, principal, "audit.read"),
    }


def _allowed(request: Request, principal: Principal, permission: str) -> bool:
    try:
        api_state(request).auth.identity.authorize(principal, permission)
    except WardenError:
        return False
    return True


@router.get("/releases/{release_id}", response_class=HTMLResponse)
async def release_page(request: Request, release_id: str) -> Response:
    principal = await signed_in(request)
    context = await _release_context(request, release_id, principal)
    return page(request, "release.html", **context)


@router.get("/releases/{release_id}/live", response_class=HTMLResponse)
async def release_live(
    request: Request, release_id: str, v: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    """204 while nothing changed (the page keeps what it shows), else the new pipeline."""
    principal = await signed_in(request)
    status = await dashboard(request).api.releases().status(release_id)
    if v and v == version_of(status):
        return Response(status_code=204)
    context = await _release_context(request, release_id, principal, status)
    return page(request, "_release_live.html", **context)


@router.get("/releases/{release_id}/contract/{stage}/report.{kind}")
async def contract_report(request: Request, release_id: str, stage: str, kind: str) -> Response:
    await signed_in(request)
    if kind not in ("json", "xml"):
        raise Refusal(404, "Not found", "reports are report.json and report.xml (JUnit)")
    releases = api_state(request).releases()
    try:
        status = await releases.status(release_id)
        path = releases.contract_report_path(status, stage, "json" if kind == "json" else "junit")
    except WardenError as exc:
        raise Refusal(HTTP_STATUS[exc.kind], "No report", str(exc)) from None
    return FileResponse(
        path, media_type="application/json" if kind == "json" else "application/xml"
    )


REPORT_KINDS = ("go-no-go", "pilot-health", "release-notes", "retrospective")


@router.get("/releases/{release_id}/reports/{kind}", response_class=HTMLResponse)
async def release_report(
    request: Request,
    release_id: str,
    kind: str,
    stage: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """A report of the release, built now, in its HTML form (`GET /releases/{id}/reports/{kind}`
    for the session's user): the go/no-go the committee decides on, and the others."""
    await signed_in(request)
    if kind not in REPORT_KINDS:
        raise Refusal(404, "Not found", f"reports are {', '.join(REPORT_KINDS)}")
    api = api_state(request)
    reports = ReportService(api.temporal, api.audit)
    try:
        report = await reports.build(ReportKind(kind), release_id, stage=stage)
    except WardenError as exc:
        raise Refusal(HTTP_STATUS[exc.kind], "No report", str(exc)) from None
    return HTMLResponse(reports.render(report, "html"))


# -- actions ------------------------------------------------------------------------------------

Text = Annotated[str, Form(max_length=5000)]
Csrf = Annotated[str, Form(alias=CSRF_FIELD, max_length=200)]


def _done(request: Request, message: str) -> Response:
    response = page(request, "_flash.html", level="ok", message=message)
    response.headers["HX-Trigger"] = "warden-refresh"
    return response


async def _act(request: Request, call: Any) -> Response:
    try:
        outcome = await call
    except WardenError as exc:
        raise Refusal(HTTP_STATUS[exc.kind], "Refused", str(exc)) from None
    return _done(request, outcome.message)


def _decision(request: Request, principal: Principal, stage: str, comment: str) -> DecisionRequest:
    return DecisionRequest(
        stage=stage or "-",
        user=principal.name,
        comment=comment,
        dev_identity=principal.dev_identity,
        request_id=request.state.request_id,
    )


@router.post("/releases/{release_id}/approve", response_class=HTMLResponse)
async def approve(
    request: Request, release_id: str, stage: Text = "", comment: Text = "", csrf: Csrf = ""
) -> Response:
    principal = await checked_post(request, "release.decide", csrf)
    decision = _decision(request, principal, stage, comment)
    return await _act(request, api_state(request).releases().approve(release_id, decision))


@router.post("/releases/{release_id}/reject", response_class=HTMLResponse)
async def reject(
    request: Request, release_id: str, stage: Text = "", comment: Text = "", csrf: Csrf = ""
) -> Response:
    # a missing comment is the release's own refusal (CommentRequired), audited by it
    principal = await checked_post(request, "release.decide", csrf)
    decision = _decision(request, principal, stage, comment)
    return await _act(request, api_state(request).releases().reject(release_id, decision))


async def _control(
    request: Request, release_id: str, action: str, reason: str, csrf: str
) -> Response:
    """pause, resume or abort: the permission of that name, then the release's own answer."""
    principal = await checked_post(request, f"release.{action}", csrf)
    if action == "abort" and not reason.strip():
        raise Refusal(422, "Reason required", "an abort needs a reason")
    fields = {
        "user": principal.name,
        "reason": reason,
        "dev_identity": principal.dev_identity,
        "request_id": request.state.request_id,
    }
    releases = api_state(request).releases()
    if action == "abort":
        return await _act(request, releases.abort(release_id, AbortRequest(**fields)))
    call = releases.pause if action == "pause" else releases.resume
    return await _act(request, call(release_id, ControlRequest(**fields)))


@router.post("/releases/{release_id}/pause", response_class=HTMLResponse)
async def pause(request: Request, release_id: str, reason: Text = "", csrf: Csrf = "") -> Response:
    return await _control(request, release_id, "pause", reason, csrf)


@router.post("/releases/{release_id}/resume", response_class=HTMLResponse)
async def resume(request: Request, release_id: str, reason: Text = "", csrf: Csrf = "") -> Response:
    return await _control(request, release_id, "resume", reason, csrf)


@router.post("/releases/{release_id}/abort", response_class=HTMLResponse)
async def abort(request: Request, release_id: str, reason: Text = "", csrf: Csrf = "") -> Response:
    return await _control(request, release_id, "abort", reason, csrf)


# -- health -------------------------------------------------------------------------------------


async def _health_context(request: Request) -> dict[str, Any]:
    state = dashboard(request)
    try:
        health = state.health()
    except WardenError as exc:
        raise Refusal(503, "Health cards not configured", str(exc)) from None
    snapshot = await health.snapshot(state.api.releases())
    try:
        events = await state.error_events()
        audit_problem = ""
    except WardenError as exc:
        events, audit_problem = [], str(exc)
    rows = sorted(alert_events(snapshot) + events, key=lambda e: e.at, reverse=True)[:50]
    version = f"{snapshot.version()}-{len(events)}-{events[0].at.timestamp() if events else 0}"
    return {
        "snapshot": snapshot,
        "events": rows,
        "audit_problem": audit_problem,
        "version": version,
    }


@router.get("/health", response_class=HTMLResponse)
async def health_page(request: Request) -> Response:
    principal = await signed_in(request)
    return page(request, "health.html", principal=principal, **await _health_context(request))


@router.get("/health/live", response_class=HTMLResponse)
async def health_live(request: Request, v: Annotated[str, Query(max_length=200)] = "") -> Response:
    principal = await signed_in(request)
    context = await _health_context(request)
    if v and v == context["version"]:
        return Response(status_code=204)
    return page(request, "_health_live.html", principal=principal, **context)


# -- one trace ----------------------------------------------------------------------------------


@router.get("/traces/{trace_id}", response_class=HTMLResponse)
async def trace_page(
    request: Request, trace_id: Annotated[str, PathParam(min_length=1, max_length=200)]
) -> Response:
    """The chain of events of one trace id (`GET /traces/{trace_id}`, `warden replay
    --trace-id`): every workflow that carries it, replayed with the current code, and what
    happened in time order."""
    principal = await signed_in(request, "audit.read")
    try:
        report = await api_state(request).replays().trace(trace_id)
    except WardenError as exc:
        raise Refusal(HTTP_STATUS[exc.kind], "No such trace", str(exc)) from None
    return page(request, "trace.html", principal=principal, report=report)

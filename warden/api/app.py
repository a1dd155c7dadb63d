"""The HTTP API of Release Warden: `create_app(settings)` builds one FastAPI application.

Routers per resource (releases, audit, ops, dev, system), one authenticator, one metrics
registry and one Temporal client per app. Dev and ops endpoints are always routed (so a call
to a switched-off one is answered 404 and audited) but appear in the OpenAPI document only
when switched on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from temporalio.client import Client

from warden import __version__, tracing
from warden.api.context import RequestContextMiddleware
from warden.api.docs import install_docs
from warden.api.errors import install_error_handlers
from warden.api.failures import FailureAuditMiddleware
from warden.api.routers import (
    access,
    audit,
    dev,
    flags,
    identity,
    ops,
    releases,
    reports,
    system,
    traces,
)
from warden.api.state import ApiState
from warden.api.strict import reject_unknown_query
from warden.settings import Settings

log = logging.getLogger("warden.api")

DESCRIPTION = """\
Start, watch, approve and control releases; accept, query and export audit events.

**Authentication**: `Authorization: Bearer wdn_...` with a token whose SHA-256 is in the
governance file (`WARDEN_GOVERNANCE_FILE`). On one machine in dev (no governance file,
`WARDEN_ENV=dev`, embedded Temporal server) a request may instead name its user with
`X-Warden-User: <name>`; it then acts with every permission and is marked `devIdentity`.

**Ids**: every response carries `X-Request-Id` (the caller's, or a new one) and `X-Trace-Id`
(the caller's, or a new one); both reach the workflow and its audit events.

**Errors**: `{"error": {"type": ..., "message": ...}}`; validation errors also list `fields`.
"""


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    """An API over `settings`; with `client`, use that Temporal client instead of connecting."""
    from warden.dashboard import (
        install_dashboard,  # a face on the same app; it imports the API's state
    )

    tracing.setup("release-warden-api")
    state = ApiState(settings, client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info(
            "Release Warden API (env %s, dev endpoints %s, ops endpoints %s, governance file %s)",
            settings.env,
            "on" if settings.dev_endpoints_enabled else "off",
            "on" if settings.ops_endpoints_enabled else "off",
            settings.governance_file or "none",
        )
        try:
            yield
        finally:
            await app.state.dashboard.aclose()
            state.close()

    app = FastAPI(
        title="Release Warden API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
        docs_url=None,  # served by install_docs, from the package instead of a CDN
        redoc_url=None,
        openapi_tags=[
            {"name": "releases", "description": "Start, look at, decide on and control releases."},
            {"name": "flags", "description": "Read flags; the kill switch."},
            {"name": "access", "description": "Access changes and the governance file's sign-off."},
            {"name": "audit", "description": "Audit events: accept, query, export."},
            {"name": "identity", "description": "Who the caller is."},
            {
                "name": "reports",
                "description": "Go/no-go, pilot health, release notes, retrospective, governance review.",
            },
            {"name": "ops", "description": "Operational endpoints (WARDEN_OPS_ENDPOINTS)."},
            {"name": "dev", "description": "Dev endpoints (WARDEN_DEV_ENDPOINTS)."},
            {"name": "system", "description": "Health and metrics."},
            {"name": "traces", "description": "The chain of events of one trace id."},
        ],
    )
    app.state.warden = state
    install_error_handlers(app)
    app.add_middleware(FailureAuditMiddleware)  # inner: runs with the request's ids
    app.add_middleware(RequestContextMiddleware, metrics=state.metrics)
    install_docs(app)
    install_dashboard(app, state)
    app.include_router(system.router)
    app.include_router(identity.router)
    app.include_router(releases.router)
    app.include_router(flags.router)
    app.include_router(access.router)
    app.include_router(audit.router)
    app.include_router(reports.router)
    app.include_router(ops.router, include_in_schema=settings.ops_endpoints_enabled)
    app.include_router(dev.router, include_in_schema=settings.dev_endpoints_enabled)
    app.include_router(traces.router)
    tracing.instrument_fastapi(app)
    return app

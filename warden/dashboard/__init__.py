"""The dashboard: server-rendered pages under /ui/ of `warden api` (docs/dashboard.md).

Jinja2 templates and htmx (vendored, no CDN) over the same services and identity checks as the
API: sign-in with an API token (or, in dev-identity mode, a user name marked not verified), the
releases list from Temporal visibility, one release's pipeline with its sign-off actions, and
the health cards with the alert ticker and error events.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from warden.api.state import ApiState
from warden.dashboard.routes import DashboardState, install_handlers, router

STATIC = Path(__file__).parent / "static"


def install_dashboard(app: FastAPI, state: ApiState) -> None:
    """Mount the dashboard on `app` (the API's), sharing its state, services and audit trail."""
    app.state.dashboard = DashboardState(state)
    install_handlers(app)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="dashboard-static")
    app.include_router(router)


__all__ = ["install_dashboard"]

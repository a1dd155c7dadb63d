"""What one API instance holds: settings, metrics, stores, the authenticator and its Temporal client."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from warden.api.auth import Authenticator
from warden.api.metrics import ApiMetrics
from warden.models.audit import AuditEvent
from warden.runtime.client import TemporalLink
from warden.services.access import AccessService
from warden.services.audit import AuditService
from warden.services.flags import FlagService
from warden.services.governance import GovernanceService
from warden.services.releases import ReleaseService
from warden.services.replay import ReplayService
from warden.settings import Settings
from warden.stores.audit import AuditStore
from warden.stores.governance import GovernanceStore

log = logging.getLogger("warden.api")


class ApiState:
    """Stores open on first use: the API starts (and answers /healthz) while its database is down."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self.metrics = ApiMetrics()
        self.auth = Authenticator(settings, lambda: self._governance_store().grants())
        self.temporal = TemporalLink(settings, client, on_restart=log.warning)
        self._lock = threading.Lock()
        self._audit: AuditStore | None = None
        self._grants: GovernanceStore | None = None

    @property
    def audit(self) -> AuditStore:
        with self._lock:
            if self._audit is None:
                self._audit = AuditStore(self.settings.audit_url)
            return self._audit

    def _governance_store(self) -> GovernanceStore:
        with self._lock:
            if self._grants is None:
                self._grants = GovernanceStore(self.settings.audit_url)
            return self._grants

    def releases(self) -> ReleaseService:
        return ReleaseService(self.temporal)

    def flags(self) -> FlagService:
        return FlagService(self.temporal)

    def audit_trail(self) -> AuditService:
        return AuditService(self.audit)

    def access(self) -> AccessService:
        return AccessService(self.temporal)

    def governance(self) -> GovernanceService:
        return GovernanceService(self.settings)

    def replays(self) -> ReplayService:
        return ReplayService(self.temporal, AuditService(self.audit), self.settings)

    async def record(
        self,
        request: Request,
        action: str,
        result: str,
        *,
        user: str,
        entity: str | None = None,
        release_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """One audit event written by the API (source `api`) with the request's ids.

        A row that cannot be written is logged, not raised: the action it records has happened
        (or the refusal stands) either way."""
        route = getattr(request.scope.get("route"), "path", request.url.path)
        event = AuditEvent(
            eventId=str(uuid.uuid4()),
            userId=user,
            action=action,
            entity=entity or f"api:{request.method} {route}",
            result=result,
            timestamp=datetime.now(UTC),
            releaseId=release_id,
            traceId=getattr(request.state, "trace_id", None),
            source="api",
            details={"requestId": getattr(request.state, "request_id", None), **(details or {})},
        )
        try:
            await run_in_threadpool(lambda: self.audit.write([event]))
        except SQLAlchemyError as exc:
            log.error("audit event %s (%s) not written: %s", action, event.eventId, exc)
        return event

    def close(self) -> None:
        for store in (self._audit, self._grants):
            if store is not None:
                store.close()


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.warden
    return state

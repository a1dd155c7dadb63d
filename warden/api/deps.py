"""Dependencies: the authenticated caller with one permission, and the dev/ops endpoint switches.

Every refusal is audited: `auth.refused` for missing credentials (401) or permissions (403),
`ops.denied` / `dev.denied` for a switched-off endpoint (404) or a caller outside the
whitelist of users or networks (403).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from warden.api.auth import AS_USER_HEADER, DEV_USER_HEADER
from warden.api.errors import ApiError
from warden.api.state import ApiState, api_state
from warden.errors import Forbidden, Unauthenticated
from warden.services.access import AccessService
from warden.services.audit import AuditService
from warden.services.flags import FlagService
from warden.services.governance import GovernanceService
from warden.services.identity import AUTH_REFUSED
from warden.services.releases import ReleaseService
from warden.services.replay import ReplayService
from warden.stores.governance import Principal

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="API token from the governance file: `Authorization: Bearer wdn_...` (`warden token new`).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _identify(api: ApiState, request: Request) -> Principal:
    return await run_in_threadpool(
        api.auth.identify,
        request.headers.get("authorization"),
        request.headers.get(DEV_USER_HEADER),
        request.headers.get(AS_USER_HEADER),
    )


async def authenticate(request: Request, permission: str) -> Principal:
    """The caller, allowed `permission`; 401 or 403, audited as `auth.refused`, otherwise."""
    api = api_state(request)
    release_id = request.path_params.get("release_id")
    details: dict[str, Any] = {
        "face": "api",
        "permission": permission,
        "path": request.url.path,
        "client": _client_host(request),
    }
    claimed = request.headers.get(AS_USER_HEADER) or request.headers.get(DEV_USER_HEADER)
    try:
        principal = await _identify(api, request)
        request.state.user = principal.name
        api.auth.identity.authorize(principal, permission)
    except Unauthenticated as exc:
        api.metrics.auth_denied.labels("unauthenticated").inc()
        await api.record(
            request,
            AUTH_REFUSED,
            "unauthenticated",
            user=(claimed or "anonymous")[:200],
            release_id=release_id,
            details={**details, "reason": str(exc)},
        )
        raise ApiError(
            401, "Unauthenticated", str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    except Forbidden as exc:
        api.metrics.auth_denied.labels("forbidden").inc()
        await api.record(
            request,
            AUTH_REFUSED,
            "forbidden",
            user=principal.name,
            release_id=release_id,
            details={**details, "reason": str(exc), "devIdentity": principal.dev_identity},
        )
        raise ApiError(403, "Forbidden", str(exc)) from None
    request.state.user = principal.name
    return principal


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(request: Request, _credentials: Credentials) -> Principal:
        return await authenticate(request, permission)

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency


def _releases(request: Request) -> ReleaseService:
    return api_state(request).releases()


def _flags(request: Request) -> FlagService:
    return api_state(request).flags()


def _audit_trail(request: Request) -> AuditService:
    return api_state(request).audit_trail()


def _access(request: Request) -> AccessService:
    return api_state(request).access()


def _governance(request: Request) -> GovernanceService:
    return api_state(request).governance()


def _replays(request: Request) -> ReplayService:
    return api_state(request).replays()


#: The services a route works through; none of them contacts anything until it is used.
Releases = Annotated[ReleaseService, Depends(_releases)]
Flags = Annotated[FlagService, Depends(_flags)]
AuditTrail = Annotated[AuditService, Depends(_audit_trail)]
Access = Annotated[AccessService, Depends(_access)]
Governance = Annotated[GovernanceService, Depends(_governance)]
Replays = Annotated[ReplayService, Depends(_replays)]

CanViewReleases = Annotated[Principal, Depends(require("release.view"))]
CanStartReleases = Annotated[Principal, Depends(require("release.start"))]
CanDecide = Annotated[Principal, Depends(require("release.decide"))]
CanPause = Annotated[Principal, Depends(require("release.pause"))]
CanResume = Annotated[Principal, Depends(require("release.resume"))]
CanAbort = Annotated[Principal, Depends(require("release.abort"))]
CanReadAudit = Annotated[Principal, Depends(require("audit.read"))]
CanWriteAudit = Annotated[Principal, Depends(require("audit.write"))]
CanViewFlags = Annotated[Principal, Depends(require("flags.view"))]
CanChangeFlags = Annotated[Principal, Depends(require("flags.change"))]
CanRequestAccess = Annotated[Principal, Depends(require("access.request"))]
CanViewAccess = Annotated[Principal, Depends(require("access.view"))]
CanDecideAccess = Annotated[Principal, Depends(require("access.decide"))]
CanViewGovernance = Annotated[Principal, Depends(require("governance.view"))]
Caller = Annotated[Principal, Depends(require("identity.view"))]

# -- dev and operational endpoints ----------------------------------------------------------------

Kind = Literal["dev", "ops"]


def switched_on(api: ApiState, kind: Kind) -> bool:
    s = api.settings
    return s.dev_endpoints_enabled if kind == "dev" else s.ops_endpoints_enabled


def _client_allowed(host: str | None, cidrs: list[str]) -> bool:
    if not cidrs:
        return True
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def gate(kind: Kind, endpoint: str, permission: str) -> Callable[..., Awaitable[Principal]]:
    """Switched off → 404; not authenticated → 401; not permitted or not whitelisted → 403."""

    async def dependency(request: Request, _credentials: Credentials) -> Principal:
        api = api_state(request)
        release_id = request.path_params.get("release_id")
        host = _client_host(request)
        if not switched_on(api, kind):
            try:
                who = (await _identify(api, request)).name
            except (Unauthenticated, ApiError):
                who = "anonymous"
            api.metrics.ops_calls.labels(endpoint, "disabled").inc()
            await api.record(
                request,
                f"{kind}.denied",
                "disabled",
                user=who,
                release_id=release_id,
                details={
                    "endpoint": endpoint,
                    "client": host,
                    "reason": f"{kind} endpoints are switched off (WARDEN_{kind.upper()}_ENDPOINTS)",
                },
            )
            raise ApiError(404, "NotFound", "Not Found")
        try:
            principal = await authenticate(request, permission)
        except ApiError:
            api.metrics.ops_calls.labels(endpoint, "denied").inc()
            raise
        allowed_users = api.settings.ops_allow_users
        reason = None
        if allowed_users and principal.name not in allowed_users:
            reason = f"{principal.name} is not in WARDEN_OPS_ALLOW_USERS"
        elif not _client_allowed(host, api.settings.ops_allow_cidrs):
            reason = f"client address {host} is not in WARDEN_OPS_ALLOW_CIDRS"
        if reason is not None:
            api.metrics.ops_calls.labels(endpoint, "denied").inc()
            await api.record(
                request,
                f"{kind}.denied",
                "not_allowed",
                user=principal.name,
                release_id=release_id,
                details={
                    "endpoint": endpoint,
                    "client": host,
                    "reason": reason,
                    "devIdentity": principal.dev_identity,
                },
            )
            raise ApiError(403, "NotAllowed", reason)
        return principal

    dependency.__name__ = f"gate_{kind}_{endpoint.replace('-', '_')}"
    return dependency


@asynccontextmanager
async def ops_call(
    request: Request,
    principal: Principal,
    kind: Kind,
    endpoint: str,
    *,
    release_id: str | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Count and audit one dev/ops call; the body fills the dict with details (`result` and
    `releaseId`, when set, become the audit row's result and release)."""
    api = api_state(request)
    action = f"{kind}.{endpoint.replace('-', '_')}"
    details: dict[str, Any] = {
        "devIdentity": principal.dev_identity,
        "client": _client_host(request),
    }
    try:
        yield details
    except Exception as exc:
        api.metrics.ops_calls.labels(endpoint, "error").inc()
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        details.pop("result", None)
        await api.record(
            request,
            action,
            "failed",
            user=principal.name,
            release_id=release_id,
            details={**details, "error": str(message)[:1000]},
        )
        raise
    api.metrics.ops_calls.labels(endpoint, "ok").inc()
    result = str(details.pop("result", "ok"))
    release_id = details.pop("releaseId", release_id)
    await api.record(
        request, action, result, user=principal.name, release_id=release_id, details=details
    )

"""The services, through Release Warden's HTTP API (`WARDEN_API_URL`), for the CLI on a laptop.

The deployment a team runs: workers and the API next to the Temporal cluster; committee members
and release managers with only a token (`WARDEN_TOKEN`) and no Temporal credentials. Each class
here has the methods of the direct service the CLI would otherwise use, returning the same
models, and raising the same kinds of error (from the API's status and error type), so every
command's output, `--json` document and exit code are the same on both paths.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from warden.errors import (
    BackendFailed,
    Forbidden,
    NotFound,
    Refused,
    Unauthenticated,
    Unavailable,
    WardenError,
)
from warden.models.audit import AuditBatch, AuditEvent, AuditQuery
from warden.models.flags import FlagOperation, FlagState, KillSwitchOutcome
from warden.models.governance import (
    AccessChangeRequest,
    AccessChangeRow,
    AccessChangeStatus,
    AccessDecision,
    AccessDecisionOutcome,
)
from warden.models.plan import ReleasePlan
from warden.models.release import (
    AbortRequest,
    ControlOutcome,
    ControlRequest,
    DecisionOutcome,
    DecisionRequest,
    ReleaseStarted,
    ReleaseStatus,
    ReleaseSummary,
)
from warden.services.flags import FlagReading
from warden.services.governance import GovernanceView
from warden.services.identity import NO_TOKEN, Actor
from warden.stores.audit import to_csv

M = TypeVar("M", bound=BaseModel)

#: The error a status answers with, when the body does not say more.
_BY_STATUS: dict[int, type[WardenError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Refused,
    502: BackendFailed,
    503: Unavailable,
}
#: How often `wait` looks at an access change.
POLL_S = 1.0


class ApiConnection:
    """One command's calls to the API: its token (or, on a dev machine, its claimed name)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        claimed: str | None,
        trace_id: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "warden-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
            if claimed:
                headers["X-Warden-As"] = claimed
        elif claimed:
            headers["X-Warden-User"] = claimed
        if trace_id:
            headers["X-Trace-Id"] = trace_id
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, trust_env=False
        )

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                params=params,
                headers={"X-Request-Id": uuid.uuid4().hex, **(headers or {})},
            )
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"the Release Warden API at {self.url} is not reachable: {exc or type(exc).__name__}",
                "ApiUnavailable",
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def get(self, path: str, model: type[M], **params: Any) -> M:
        return model.model_validate_json(self.call("GET", path, params=_params(params)).content)

    def post(self, path: str, body: Any, model: type[M]) -> M:
        return model.model_validate_json(self.call("POST", path, json=body).content)


def _params(params: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Query parameters without the unset ones; lists as repeated parameters."""
    out: list[tuple[str, Any]] = []
    for key, value in params.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            out.append((key, item.isoformat() if hasattr(item, "isoformat") else item))
    return out


def _error(response: httpx.Response) -> WardenError:
    try:
        detail = response.json()["error"]
        message, code = str(detail["message"]), str(detail["type"])
    except (ValueError, KeyError, TypeError):
        message, code = f"the API answered {response.status_code}", None
    error = _BY_STATUS.get(response.status_code, WardenError)
    return error(message, code)


class RemoteIdentity:
    def __init__(self, api: ApiConnection, *, has_token: bool) -> None:
        self._api = api
        self._has_token = has_token

    def whoami(self) -> Actor:
        """The caller as the API checked them (token, and `--as` against it)."""
        try:
            body = self._api.call("GET", "/whoami").json()
        except Unauthenticated as exc:
            if self._has_token:
                raise
            raise Unauthenticated(NO_TOKEN, exc.code) from None  # say what the CLI user sets
        return Actor(str(body["user"]), dev_identity=bool(body["dev_identity"]))


class RemoteReleases:
    def __init__(self, api: ApiConnection) -> None:
        self._api = api

    async def start(
        self,
        plan: ReleasePlan,
        started_by: str,
        *,
        trace_id: str | None = None,
        request_id: str | None = None,
        dev_identity: bool = False,
        rerun: bool = False,
    ) -> ReleaseStarted:
        body = {
            "plan": plan.model_dump(mode="json", by_alias=True, exclude_none=True),
            "trace_id": trace_id,
            "rerun": rerun,
        }
        return self._api.post("/releases", body, ReleaseStarted)

    async def status(self, release_id: str) -> ReleaseStatus:
        return self._api.get(f"/releases/{release_id}", ReleaseStatus)

    async def list(self, *, limit: int = 50, query: str | None = None) -> list[ReleaseSummary]:
        body = self._api.call("GET", "/releases", params={"limit": min(limit, 500)}).json()
        return TypeAdapter(list[ReleaseSummary]).validate_python(body["releases"])

    async def approve(self, release_id: str, request: DecisionRequest) -> DecisionOutcome:
        return self._decide(release_id, request, "approve")

    async def reject(self, release_id: str, request: DecisionRequest) -> DecisionOutcome:
        return self._decide(release_id, request, "reject")

    def _decide(self, release_id: str, request: DecisionRequest, verb: str) -> DecisionOutcome:
        body = {"stage": request.stage, "comment": request.comment}
        return self._api.post(f"/releases/{release_id}/{verb}", body, DecisionOutcome)

    async def pause(self, release_id: str, request: ControlRequest) -> ControlOutcome:
        body = {"reason": request.reason}
        return self._api.post(f"/releases/{release_id}/pause", body, ControlOutcome)

    async def resume(self, release_id: str, request: ControlRequest) -> ControlOutcome:
        body = {"reason": request.reason}
        return self._api.post(f"/releases/{release_id}/resume", body, ControlOutcome)

    async def abort(self, release_id: str, request: AbortRequest) -> ControlOutcome:
        body = {"reason": request.reason}
        return self._api.post(f"/releases/{release_id}/abort", body, ControlOutcome)


class RemoteFlags:
    def __init__(self, api: ApiConnection) -> None:
        self._api = api

    async def kill_switch(self, op: FlagOperation) -> KillSwitchOutcome:
        body = {"percent": op.percent, "reason": op.reason}
        headers = {"X-Trace-Id": op.trace_id} if op.trace_id else None
        response = self._api.call(
            "POST", f"/flags/{op.environment}/{op.flag}", json=body, headers=headers
        )
        return KillSwitchOutcome.model_validate_json(response.content)

    async def read(
        self, environments: list[str], flags: list[str], *, via_workers: bool = False
    ) -> FlagReading:
        params = _params({"env": environments or None, "flag": flags or None})
        body = self._api.call("GET", "/flags", params=params).json()
        return FlagReading(TypeAdapter(list[FlagState]).validate_python(body["flags"]), "workers")


class RemoteAccess:
    def __init__(self, api: ApiConnection) -> None:
        self._api = api

    async def request(self, request: AccessChangeRequest) -> str:
        if request.kind == "config-signoff":
            body: dict[str, Any] = {"reason": request.reason}
            path = "/governance/signoff"
        else:
            body = {
                "kind": request.kind,
                "user": request.user,
                "role": request.role,
                "reason": request.reason,
            }
            path = "/access/changes"
        return str(self._api.call("POST", path, json=body).json()["change_id"])

    async def status(self, change_id: str) -> AccessChangeStatus:
        return self._api.get(f"/access/changes/{change_id}", AccessChangeStatus)

    async def wait(self, change_id: str) -> AccessChangeStatus:
        while True:
            status = await self.status(change_id)
            if status.state not in ("waiting", "approved"):
                return status
            await asyncio.sleep(POLL_S)

    async def decide(
        self, change_id: str, decision: AccessDecision, approve: bool
    ) -> AccessDecisionOutcome:
        verb = "approve" if approve else "reject"
        body = {"comment": decision.comment}
        return self._api.post(f"/access/changes/{change_id}/{verb}", body, AccessDecisionOutcome)

    async def list(self, limit: int = 50) -> list[AccessChangeRow]:
        body = self._api.call("GET", "/access/changes", params={"limit": min(limit, 500)}).json()
        return TypeAdapter(list[AccessChangeRow]).validate_python(body["changes"])


class RemoteGovernance:
    def __init__(self, api: ApiConnection) -> None:
        self._api = api

    def show(self) -> GovernanceView:
        return self._api.get("/governance", GovernanceView)


class RemoteAudit:
    def __init__(self, api: ApiConnection) -> None:
        self._api = api

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        params: dict[str, Any] = query.model_dump(exclude_none=True)
        params["limit"] = min(query.limit, 100_000)
        params["newest"] = "true" if query.newest else "false"
        return self._api.get("/audit/events", AuditBatch, **params).events

    def export(self, query: AuditQuery, *, csv: bool) -> tuple[str, int]:
        events = self.query(query)
        text = to_csv(events) if csv else "".join(e.model_dump_json() + "\n" for e in events)
        return text, len(events)

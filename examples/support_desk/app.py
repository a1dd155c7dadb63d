"""The Support Desk HTTP API: `create_app(config)` builds one service instance.

Every status code an operation can answer is declared in the OpenAPI document (`/openapi.json`),
so a contract test of the good build passes with every schemathesis check. `/metrics` and the
`/_sim/*` dev endpoints that drive the simulator are left out of the document.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Match

from examples.support_desk.config import DeskConfig
from examples.support_desk.flags import DeskFlags
from examples.support_desk.metrics import CHANNELS, DeskMetrics
from examples.support_desk.models import (
    ID_PATTERN,
    AuditEventList,
    Channel,
    ChannelStatus,
    ContractCreate,
    ContractList,
    ContractPublic,
    ContractStatus,
    ContractUpdate,
    ConversationCreate,
    ConversationList,
    ConversationPublic,
    ConversationStatus,
    CustomerProfile,
    Health,
    MessageCreate,
    MessagePublic,
    Problem,
    RequirementCreate,
    RequirementList,
    RequirementPublic,
    SolutionRequest,
    SolutionSuggestions,
    TaskCreate,
    TaskList,
    TaskPublic,
    TaskState,
    TaskUpdate,
)
from examples.support_desk.service import Conflict, Desk, NotFound, UpstreamFailure

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

IdPath = Annotated[str, Path(pattern=ID_PATTERN, min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=100, description="At most this many items, newest last.")]

#: Module level, so the postponed annotation of the nested token check can resolve it.
BEARER = HTTPBearer(auto_error=False, description="The desk's API token.")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "Not found"}}
BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not JSON"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The resource's state does not allow this"}
}


class ObserveRequests:
    """Counts and times every request by route template; answers a 405 with the path's full Allow list."""

    def __init__(self, app: ASGIApp, metrics: DeskMetrics, routes: Callable[[], list[Any]]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = 500  # an exception that escapes is answered 500 by the server error handler

        async def observe(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
                if answered == 405:
                    message["headers"] = self._with_allow(scope, message.get("headers", []))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.record_http(
                scope["method"], template, answered, time.perf_counter() - started
            )

    def _with_allow(
        self, scope: Scope, headers: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        # Each route only knows its own methods; the path's Allow header lists all of them.
        allowed: set[str] = set()
        probe = {**scope, "method": "GET"}
        for route in self.routes():
            methods = getattr(route, "methods", None)
            if methods and route.matches(probe)[0] in (Match.FULL, Match.PARTIAL):
                allowed |= set(methods)
        if not allowed:
            return headers
        kept = [(k, v) for k, v in headers if k.lower() != b"allow"]
        return [*kept, (b"allow", ", ".join(sorted(allowed)).encode())]


class _Operations:
    """Registers API operations on the app itself with the shared auth dependency and responses.

    Routes stay flat on the app (no included router), so a 405 can list every method of a path.
    """

    def __init__(
        self, app: FastAPI, dependencies: list[Any], responses: dict[int | str, dict[str, Any]]
    ) -> None:
        self.app = app
        self.dependencies = dependencies
        self.responses = responses

    def _route(self, method: str, path: str, **options: Any) -> Callable[[Any], Any]:
        responses = {**self.responses, **options.pop("responses", {})}
        if options.pop("body", False):
            responses.update(BAD_BODY)
        return self.app.api_route(
            path, methods=[method], dependencies=self.dependencies, responses=responses, **options
        )

    def get(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("POST", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Any], Any]:
        return self._route("DELETE", path, **options)


def _trace_id(request: Request) -> str | None:
    return request.headers.get("x-trace-id")


def create_app(config: DeskConfig | None = None) -> FastAPI:
    config = config or DeskConfig.from_env()
    metrics = DeskMetrics()
    flags = DeskFlags(config.flags_file, poll_ms=config.flag_poll_ms)
    desk = Desk(config=config, flags=flags, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(flags.start)
        simulator = None
        if config.simulate_rps > 0:
            from examples.support_desk.simulator import TrafficSimulator

            simulator = TrafficSimulator(app, desk, rps=config.simulate_rps)
            simulator.start()
        app.state.simulator = simulator
        desk.audit("service.started", f"service:support-desk@{config.version}", user="system")
        try:
            yield
        finally:
            if simulator is not None:
                await simulator.stop()
            await asyncio.to_thread(flags.stop)

    app = FastAPI(
        title="Support Desk",
        version=config.version,
        description="Customer-support desk: conversations over IM channels, requirements, tasks and contracts.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.desk = desk
    app.state.config = config
    app.add_middleware(ObserveRequests, metrics=metrics, routes=lambda: app.router.routes)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(UpstreamFailure)
    async def _upstream(request: Request, exc: UpstreamFailure) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=500)

    dependencies: list[Any] = []
    common: dict[int | str, dict[str, Any]] = {}
    if config.api_token:
        token = config.api_token

        async def require_token(credentials: BearerCredentials) -> None:
            if credentials is None or not hmac.compare_digest(
                credentials.credentials.encode(), token.encode()
            ):
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "a valid bearer token is required",
                    headers={"WWW-Authenticate": "Bearer"},
                )

        dependencies = [Depends(require_token)]
        common = {401: {"model": Problem, "description": "Missing or wrong API token"}}

    api = _Operations(app, dependencies, common)

    @app.get("/healthz", response_model=Health, tags=["health"], operation_id="getHealth")
    async def healthz() -> Health:
        return Health(status="ok", build=config.build, version=config.version)

    # -- channels -------------------------------------------------------------------------

    @api.get(
        "/channels",
        response_model=list[ChannelStatus],
        tags=["channels"],
        operation_id="listChannels",
    )
    async def list_channels() -> list[ChannelStatus]:
        return [desk.channel_status(c) for c in CHANNELS]

    @api.get(
        "/channels/{channel}",
        response_model=ChannelStatus,
        tags=["channels"],
        operation_id="getChannel",
    )
    async def get_channel(channel: Channel) -> ChannelStatus:
        return desk.channel_status(channel.value)

    # -- conversations ---------------------------------------------------------------------

    @api.post(
        "/conversations",
        response_model=ConversationPublic,
        status_code=201,
        responses=CONFLICT,
        tags=["conversations"],
        operation_id="createConversation",
        body=True,
    )
    async def create_conversation(
        body: ConversationCreate, request: Request, response: Response
    ) -> ConversationPublic:
        conversation = desk.create_conversation(body, _trace_id(request))
        response.headers["Location"] = f"/conversations/{conversation.id}"
        return conversation.public()

    @api.get(
        "/conversations",
        response_model=ConversationList,
        tags=["conversations"],
        operation_id="listConversations",
    )
    async def list_conversations(
        channel: Channel | None = None,
        conversation_status: Annotated[ConversationStatus | None, Query(alias="status")] = None,
        limit: Limit = 50,
    ) -> ConversationList:
        items, total = desk.list_conversations(
            channel.value if channel else None,
            conversation_status.value if conversation_status else None,
            limit,
        )
        return ConversationList(items=items, total=total)

    @api.get(
        "/conversations/{conversationId}",
        response_model=ConversationPublic,
        responses=NOT_FOUND,
        tags=["conversations"],
        operation_id="getConversation",
    )
    async def get_conversation(conversationId: IdPath) -> ConversationPublic:
        return desk.conversation(conversationId).public()

    @api.delete(
        "/conversations/{conversationId}",
        status_code=204,
        responses=NOT_FOUND,
        tags=["conversations"],
        operation_id="deleteConversation",
    )
    async def delete_conversation(conversationId: IdPath, request: Request) -> Response:
        desk.delete_conversation(conversationId, _trace_id(request))
        return Response(status_code=204)

    @api.post(
        "/conversations/{conversationId}/messages",
        response_model=MessagePublic,
        status_code=201,
        responses={**NOT_FOUND, **CONFLICT},
        tags=["conversations"],
        operation_id="sendMessage",
        body=True,
    )
    async def send_message(
        conversationId: IdPath, body: MessageCreate, request: Request
    ) -> MessagePublic:
        return desk.add_message(conversationId, body, _trace_id(request))

    @api.post(
        "/conversations/{conversationId}/resolve",
        response_model=ConversationPublic,
        responses={**NOT_FOUND, **CONFLICT},
        tags=["conversations"],
        operation_id="resolveConversation",
    )
    async def resolve_conversation(conversationId: IdPath, request: Request) -> ConversationPublic:
        return desk.resolve(conversationId, _trace_id(request)).public()

    @api.get(
        "/customers/{customerId}/profile",
        response_model=CustomerProfile,
        responses=NOT_FOUND,
        tags=["customers"],
        operation_id="getCustomerProfile",
    )
    async def customer_profile(customerId: IdPath) -> CustomerProfile:
        return desk.customer_profile(customerId)

    @api.post(
        "/solutions/suggest",
        response_model=SolutionSuggestions,
        tags=["solutions"],
        operation_id="suggestSolutions",
        body=True,
    )
    async def suggest_solutions(body: SolutionRequest) -> Any:
        suggestions = desk.suggest_solutions(body)
        if isinstance(suggestions, dict):
            return JSONResponse(suggestions)  # the bad build's raw upstream payload
        return suggestions

    # -- requirements and tasks -------------------------------------------------------------

    @api.post(
        "/requirements",
        response_model=RequirementPublic,
        status_code=201,
        tags=["requirements"],
        operation_id="createRequirement",
        body=True,
    )
    async def create_requirement(
        body: RequirementCreate, request: Request, response: Response
    ) -> RequirementPublic:
        requirement = desk.create_requirement(body, _trace_id(request))
        response.headers["Location"] = f"/requirements/{requirement.id}"
        return requirement

    @api.get(
        "/requirements",
        response_model=RequirementList,
        tags=["requirements"],
        operation_id="listRequirements",
    )
    async def list_requirements(limit: Limit = 50) -> RequirementList:
        items = list(desk.requirements.values())
        return RequirementList(items=items[-limit:], total=len(items))

    @api.get(
        "/requirements/{requirementId}",
        response_model=RequirementPublic,
        responses=NOT_FOUND,
        tags=["requirements"],
        operation_id="getRequirement",
    )
    async def get_requirement(requirementId: IdPath) -> RequirementPublic:
        return desk.requirement(requirementId)

    @api.delete(
        "/requirements/{requirementId}",
        status_code=204,
        responses=NOT_FOUND,
        tags=["requirements"],
        operation_id="deleteRequirement",
    )
    async def delete_requirement(requirementId: IdPath, request: Request) -> Response:
        desk.delete_requirement(requirementId, _trace_id(request))
        return Response(status_code=204)

    @api.post(
        "/tasks",
        response_model=TaskPublic,
        status_code=201,
        responses=NOT_FOUND,
        tags=["tasks"],
        operation_id="createTask",
        body=True,
    )
    async def create_task(body: TaskCreate, request: Request, response: Response) -> TaskPublic:
        task = desk.create_task(body, _trace_id(request))
        response.headers["Location"] = f"/tasks/{task.id}"
        return task

    @api.get("/tasks", response_model=TaskList, tags=["tasks"], operation_id="listTasks")
    async def list_tasks(
        state: TaskState | None = None,
        owner: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)] = None,
        limit: Limit = 50,
    ) -> TaskList:
        items = [
            t
            for t in desk.tasks.values()
            if (state is None or t.state == state) and (owner is None or t.owner == owner)
        ]
        return TaskList(items=items[-limit:], total=len(items))

    @api.get(
        "/tasks/{taskId}",
        response_model=TaskPublic,
        responses=NOT_FOUND,
        tags=["tasks"],
        operation_id="getTask",
    )
    async def get_task(taskId: IdPath) -> TaskPublic:
        return desk.task(taskId)

    @api.patch(
        "/tasks/{taskId}",
        response_model=TaskPublic,
        responses=NOT_FOUND,
        tags=["tasks"],
        operation_id="updateTask",
        body=True,
    )
    async def update_task(taskId: IdPath, body: TaskUpdate, request: Request) -> TaskPublic:
        return desk.update_task(taskId, body, _trace_id(request))

    @api.delete(
        "/tasks/{taskId}",
        status_code=204,
        responses=NOT_FOUND,
        tags=["tasks"],
        operation_id="deleteTask",
    )
    async def delete_task(taskId: IdPath, request: Request) -> Response:
        desk.delete_task(taskId, _trace_id(request))
        return Response(status_code=204)

    # -- contracts --------------------------------------------------------------------------

    @api.post(
        "/contracts",
        response_model=ContractPublic,
        status_code=201,
        tags=["contracts"],
        operation_id="createContract",
        body=True,
    )
    async def create_contract(
        body: ContractCreate, request: Request, response: Response
    ) -> ContractPublic:
        contract = desk.create_contract(body, _trace_id(request))
        response.headers["Location"] = f"/contracts/{contract.id}"
        return contract

    @api.get(
        "/contracts", response_model=ContractList, tags=["contracts"], operation_id="listContracts"
    )
    async def list_contracts(
        contract_status: Annotated[ContractStatus | None, Query(alias="status")] = None,
        limit: Limit = 50,
    ) -> ContractList:
        items = [
            c
            for c in desk.contracts.values()
            if contract_status is None or c.status == contract_status
        ]
        return ContractList(items=items[-limit:], total=len(items))

    @api.get(
        "/contracts/{contractId}",
        response_model=ContractPublic,
        responses=NOT_FOUND,
        tags=["contracts"],
        operation_id="getContract",
    )
    async def get_contract(contractId: IdPath) -> ContractPublic:
        return desk.contract(contractId)

    @api.patch(
        "/contracts/{contractId}",
        response_model=ContractPublic,
        responses={**NOT_FOUND, **CONFLICT},
        tags=["contracts"],
        operation_id="updateContract",
        body=True,
    )
    async def update_contract(
        contractId: IdPath, body: ContractUpdate, request: Request
    ) -> ContractPublic:
        return desk.update_contract(contractId, body, _trace_id(request))

    @api.delete(
        "/contracts/{contractId}",
        status_code=204,
        responses=NOT_FOUND,
        tags=["contracts"],
        operation_id="deleteContract",
    )
    async def delete_contract(contractId: IdPath, request: Request) -> Response:
        desk.delete_contract(contractId, _trace_id(request))
        return Response(status_code=204)

    # -- audit --------------------------------------------------------------------------------

    @api.get(
        "/audit/events",
        response_model=AuditEventList,
        tags=["audit"],
        operation_id="listAuditEvents",
    )
    async def list_audit_events(limit: Limit = 50) -> AuditEventList:
        return AuditEventList(items=desk.audit_events(limit), total=len(desk.audit_log))

    _add_operational_endpoints(app, desk)
    return app


def _add_operational_endpoints(app: FastAPI, desk: Desk) -> None:
    """Prometheus metrics and the simulator's dev endpoints; none of them is part of the API contract."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(
            desk.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.post("/_sim/channels/{channel}/{state}", include_in_schema=False)
    async def set_channel(channel: str, state: str) -> Any:
        if state not in ("up", "down"):
            return JSONResponse({"detail": "state is 'up' or 'down'"}, status_code=404)
        desk.set_channel_up(channel, state == "up")
        return desk.channel_status(channel).model_dump(by_alias=True, mode="json")

    @app.post("/_sim/sla", include_in_schema=False)
    async def set_overdue_rate(
        overdue_rate: Annotated[float, Query(alias="overdueRate", ge=0, le=1)],
    ) -> Any:
        desk.sla_overdue_rate = overdue_rate
        return {"overdueRate": desk.sla_overdue_rate}

    @app.post("/_sim/audit/{state}", include_in_schema=False)
    async def set_audit(state: str) -> Any:
        if state not in ("pause", "resume"):
            return JSONResponse({"detail": "state is 'pause' or 'resume'"}, status_code=404)
        desk.audit_paused = state == "pause"
        return {"auditPaused": desk.audit_paused}

    @app.get("/_sim/state", include_in_schema=False)
    async def sim_state(request: Request) -> Any:
        simulator = getattr(request.app.state, "simulator", None)
        return {
            "build": desk.config.build,
            "flagsFile": str(desk.config.flags_file) if desk.config.flags_file else None,
            "channelsDown": sorted(desk.channels_down),
            "overdueRate": desk.sla_overdue_rate,
            "auditPaused": desk.audit_paused,
            "simulator": simulator.stats() if simulator is not None else None,
        }

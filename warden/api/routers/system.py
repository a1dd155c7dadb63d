"""`/healthz` and `/metrics`: no credentials, nothing secret (bind the API where scrapers reach it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from warden import __version__
from warden.api.models import HealthPublic
from warden.api.state import api_state

router = APIRouter(tags=["system"])


@router.get(
    "/healthz", response_model=HealthPublic, summary="Liveness, and whether Temporal answers"
)
async def healthz(request: Request) -> HealthPublic:
    """200 while the API serves. `temporal` reports the connection without opening one."""
    api = api_state(request)
    return HealthPublic(
        env=api.settings.env,
        temporal=await api.temporal.health(),
        dev_endpoints=api.settings.dev_endpoints_enabled,
        ops_endpoints=api.settings.ops_endpoints_enabled,
        version=__version__,
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics of the API",
    responses={200: {"description": "Prometheus text exposition format."}},
)
async def metrics(request: Request) -> Response:
    api = api_state(request)
    return Response(api.metrics.exposition(), media_type=api.metrics.content_type)

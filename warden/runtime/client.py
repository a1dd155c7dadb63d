"""The one Temporal client factory: every worker, CLI call, API request, test and replay uses it."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from warden.runtime import devserver
from warden.settings import Settings


class TemporalUnavailable(RuntimeError):
    """Temporal could not be reached (CLI exit code 3)."""


def _tls(settings: Settings) -> TLSConfig | bool:
    if not (settings.temporal_tls_cert or settings.temporal_tls_ca):
        return bool(settings.temporal_api_key)  # Temporal Cloud API keys need TLS
    return TLSConfig(
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=settings.temporal_tls_key.read_bytes()
        if settings.temporal_tls_key
        else None,
        server_root_ca_cert=settings.temporal_tls_ca.read_bytes()
        if settings.temporal_tls_ca
        else None,
    )


async def connect(settings: Settings, *, autostart: bool = True, ui: bool = False) -> Client:
    """Connect to the configured cluster, or to the embedded dev server (started when needed)."""
    try:
        if settings.embedded and autostart:
            devserver.ensure_running(settings, ui=ui)
        return await Client.connect(
            settings.target_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            tls=_tls(settings),
            api_key=settings.temporal_api_key.get_secret_value()
            if settings.temporal_api_key
            else None,
        )
    except devserver.DevServerError as exc:
        raise TemporalUnavailable(str(exc)) from None
    except (RuntimeError, OSError) as exc:
        raise TemporalUnavailable(
            f"Temporal is not reachable at {settings.target_address} "
            f"(namespace {settings.temporal_namespace}): {str(exc).splitlines()[0]}"
        ) from None

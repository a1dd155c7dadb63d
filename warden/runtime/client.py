"""The one Temporal client factory: every worker, CLI call, API request, test and replay uses it."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCStatusCode, TLSConfig

from warden.errors import Unavailable
from warden.runtime import devserver
from warden.settings import Settings

#: RPC statuses of a call nobody answered in time: on a live server, no worker polled.
NO_ANSWER = (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)


class TemporalUnavailable(Unavailable):
    """Temporal could not be reached."""


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


async def connect(settings: Settings, *, autostart: bool = True, ui: bool = True) -> Client:
    """Connect to the configured cluster, or to the embedded dev server (started when needed,
    with its Web UI unless `ui` is false)."""
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


class TemporalLink:
    """A Temporal client connected on first need (and again after a failure to connect).

    On one machine (the embedded dev server) connecting also starts a background worker when
    none polls, as every command that needs one does. The services take a link, not a client,
    so a face can build them and validate a request before anything is contacted.
    """

    def __init__(
        self, settings: Settings, client: Client | None = None, *, need_worker: bool = True
    ) -> None:
        self.settings = settings
        self._client = client
        self._need_worker = need_worker
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                from warden.runtime.background import ensure_worker

                client = await connect(self.settings)
                if self._need_worker:
                    await ensure_worker(client, self.settings)
                self._client = client
            return self._client

    async def health(self) -> str:
        """ok, not connected, or why it is unreachable; never raises."""
        if self._client is None:
            return "not connected"
        try:
            await asyncio.wait_for(self._client.service_client.check_health(), timeout=3)
        except Exception as exc:  # health reports any failure, it never raises
            return f"unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        return "ok"

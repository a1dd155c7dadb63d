"""The one Temporal client factory: every worker, CLI call, API request, test and replay uses it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCStatusCode, TLSConfig

from warden import tracing
from warden.errors import Unavailable
from warden.runtime import devserver
from warden.settings import Settings

#: How often a long-lived link (the API's) looks again whether the background worker runs.
WORKER_RECHECK_S = 15.0
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
            interceptors=tracing.temporal_interceptors(),
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

    On one machine (the embedded dev server) it starts what it needs, as every command does:
    the server, when it is not listening (also after `warden server stop`), and a background
    worker when none polls or when the one running was started with other settings. The
    services take a link, not a client, so a face can build them and validate a request before
    anything is contacted.
    """

    def __init__(
        self,
        settings: Settings,
        client: Client | None = None,
        *,
        need_worker: bool = True,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._given = client is not None
        self._managed = not self._given and settings.embedded
        self._need_worker = need_worker
        self._on_restart = on_restart
        self._lock = asyncio.Lock()
        self._worker_checked: float | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def client(self) -> Client:
        if self._client is not None and not self._server_gone() and not self._worker_due():
            return self._client
        async with self._lock:
            if self._client is None or self._server_gone():
                self._client = await connect(self.settings)
                self._worker_checked = None
            if self._worker_due():
                from warden.runtime.background import ensure_worker

                await ensure_worker(self._client, self.settings, on_restart=self._on_restart)
                self._worker_checked = time.monotonic()
            return self._client

    def _server_gone(self) -> bool:
        """Embedded: the dev server went away (`warden server stop`): start it again."""
        return self._managed and not devserver.is_listening(
            "127.0.0.1", self.settings.dev_server_port
        )

    def _worker_due(self) -> bool:
        """Never looked for a worker yet, or (embedded) not for a while: a long-lived link (the
        API's, a `--wait`) starts the background worker again when it went away."""
        if not self._need_worker or self._given:
            return False
        if self._worker_checked is None:
            return True
        return self._managed and time.monotonic() - self._worker_checked > WORKER_RECHECK_S

    async def health(self) -> str:
        """ok, not connected, or why it is unreachable; never raises."""
        if self._client is None:
            return "not connected"
        try:
            await asyncio.wait_for(self._client.service_client.check_health(), timeout=3)
        except Exception as exc:  # health reports any failure, it never raises
            return f"unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        return "ok"

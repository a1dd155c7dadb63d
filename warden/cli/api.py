"""`warden api`: serve the HTTP API (FastAPI on uvicorn) on WARDEN_API_HOST:WARDEN_API_PORT."""

from __future__ import annotations

import ipaddress

import click

from warden.cli.common import fail, info, session


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", help="Interface to listen on (default: WARDEN_API_HOST, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port (default: WARDEN_API_PORT, 8700)."
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
def api(host: str | None, port: int | None, log_level: str) -> None:
    """Serve the HTTP API: releases, approvals, audit events, /healthz, /metrics, dev/ops endpoints."""
    import logging

    import uvicorn

    from warden.api import create_app
    from warden.api.auth import dev_identity_allowed
    from warden.stores.governance import GovernanceError, load_governance

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = session().settings
    host = host or settings.api_host
    port = port or settings.api_port
    dev_identity = dev_identity_allowed(settings)
    if dev_identity and not _loopback(host):
        fail(
            f"without a governance file anyone may claim a user with X-Warden-User; refusing to listen on {host}. "
            "Set WARDEN_GOVERNANCE_FILE or listen on 127.0.0.1"
        )
    if settings.governance_file is not None:
        try:
            load_governance(settings.governance_file)
        except GovernanceError as exc:
            fail(str(exc))
    info(
        f"Release Warden API on http://{host}:{port} (OpenAPI: /docs, /openapi.json; env {settings.env})"
    )
    info(
        "dev endpoints: "
        + ("on" if settings.dev_endpoints_enabled else "off")
        + "; ops endpoints: "
        + ("on" if settings.ops_endpoints_enabled else "off")
        + (
            "; identity: X-Warden-User (dev, no governance file)"
            if dev_identity
            else "; identity: bearer tokens"
        )
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)

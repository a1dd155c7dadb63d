"""Release Warden's HTTP API (FastAPI): `create_app(settings)`, served by `warden api`."""

from warden.api.app import create_app

__all__ = ["create_app"]

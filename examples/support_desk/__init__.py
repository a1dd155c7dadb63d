"""Support Desk: a small customer-support service that Release Warden's releases run against.

It serves conversations over IM channels, requirements, tasks and contracts; exposes an
OpenAPI document, Prometheus metrics, and reads its feature flags from a flagd file through
OpenFeature. A deliberately broken build (`--build bad`) breaks its contract behind the
`ai.solutions` flag only, so contract gates and metric guards have something real to catch.
"""

from examples.support_desk.config import DeskConfig
from examples.support_desk.flags import FLAG_KEYS, default_flags

__all__ = ["FLAG_KEYS", "DeskConfig", "default_flags"]

"""Flag activities over a pluggable backend (flagd-file by default, Unleash for teams)."""

from activities.flags.activities import FlagActivities, build_backend
from activities.flags.backend import FlagBackend, FlagBackendError, FlagConfigError, FlagNotFound

__all__ = [
    "FlagActivities",
    "FlagBackend",
    "FlagBackendError",
    "FlagConfigError",
    "FlagNotFound",
    "build_backend",
]

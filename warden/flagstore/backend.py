"""The flag backend interface: read flags, set a percentage, restore a captured state."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable

from warden.models.flags import FlagChangeResult, FlagState


class FlagBackendError(Exception):
    """The backend failed in a way retrying may fix (5xx, timeout, lock contention)."""


class FlagConfigError(Exception):
    """The flag or backend cannot be used as configured; retrying will not help."""


class FlagNotFound(FlagConfigError):
    """The flag does not exist in the environment."""


class FlagBackend(ABC):
    """A flag service. Implementations must make `set_percent` and `restore` idempotent."""

    name: str

    @abstractmethod
    async def read(self, environment: str, flags: Iterable[str]) -> list[FlagState]:
        """Current state of each flag; `exists=False` for flags the backend does not know."""

    @abstractmethod
    async def set_percent(self, environment: str, flag: str, percent: int) -> FlagChangeResult:
        """Serve the flag's on-variant to `percent`% of traffic. No write when already there."""

    @abstractmethod
    async def restore(self, environment: str, states: list[FlagState]) -> None:
        """Put each flag's `definition` back verbatim."""

    async def list_flags(self, environment: str) -> list[FlagState]:
        """Every flag in an environment (for `warden flags show`)."""
        return []

    async def known_environments(self) -> list[str]:
        """The environments this backend holds flags for (`warden flags show` without --env)."""
        return []

    async def aclose(self) -> None:
        return None


def digest(states: Iterable[FlagState]) -> str:
    canonical = json.dumps(
        [
            [s.flag, s.environment, s.exists, s.definition]
            for s in sorted(states, key=lambda s: s.flag)
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()

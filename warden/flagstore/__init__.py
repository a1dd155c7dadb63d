"""Flag backends: where flags live (flagd files by default, an Unleash server for teams).

Every backend reads flags, sets a percentage and restores a captured state verbatim;
`restore_and_verify` is the one place that restores and then reads back to prove it.
"""

from __future__ import annotations

from warden.flagstore.backend import (
    FlagBackend,
    FlagBackendError,
    FlagConfigError,
    FlagNotFound,
    digest,
)
from warden.models.flags import FlagState
from warden.settings import Settings

__all__ = [
    "FlagBackend",
    "FlagBackendError",
    "FlagConfigError",
    "FlagNotFound",
    "build_backend",
    "digest",
    "local_backend",
    "read_flags",
    "restore_and_verify",
]


def build_backend(settings: Settings) -> FlagBackend:
    if settings.flag_backend == "unleash":
        from warden.flagstore.unleash import UnleashBackend

        return UnleashBackend.from_settings(settings)
    from warden.flagstore.flagd_file import FlagdFileBackend

    return FlagdFileBackend(settings.flags_path)


def local_backend(settings: Settings) -> FlagBackend | None:
    """The flag backend as this machine reaches it, when it can: the flagd files in
    WARDEN_FLAGS_DIR when that directory is here, or the Unleash server in the settings."""
    if settings.flag_backend == "unleash":
        return build_backend(settings) if settings.unleash_url else None
    return build_backend(settings) if settings.flags_path.is_dir() else None


async def read_flags(
    backend: FlagBackend, environments: list[str], flags: list[str]
) -> list[FlagState]:
    """Flags as `warden flags show` reads them: `flags` (or every flag) in `environments` (or
    every environment the backend holds). Errors are the backend's, for the caller to map."""
    for_environments = environments or await backend.known_environments()
    if not for_environments:
        raise FlagConfigError(f"the {backend.name} flag backend holds no environments")
    states: list[FlagState] = []
    for environment in for_environments:
        if flags:
            states += await backend.read(environment, flags)
        else:
            states += await backend.list_flags(environment)
    return states


async def restore_and_verify(
    backend: FlagBackend, environment: str, states: list[FlagState]
) -> tuple[list[FlagState], list[str]]:
    """Put each captured flag back verbatim, then read every one again.

    Returns the flags as read back where they match what was captured, and a line for each one
    that does not. Backend errors (FlagBackendError, FlagConfigError) are the caller's to map."""
    await backend.restore(environment, states)
    after = {s.flag: s for s in await backend.read(environment, [s.flag for s in states])}
    restored: list[FlagState] = []
    mismatches: list[str] = []
    for state in states:
        now = after.get(state.flag)
        if now is None or now.exists != state.exists or now.definition != state.definition:
            mismatches.append(f"{state.flag} in {environment}")
        else:
            restored.append(now)
    return restored, mismatches

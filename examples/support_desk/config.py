"""How one Support Desk process is configured: command-line options, with environment defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Build = Literal["good", "bad"]
BUILDS: tuple[Build, ...] = ("good", "bad")

ENV_BUILD = "SUPPORT_DESK_BUILD"
ENV_FLAGS_FILE = "SUPPORT_DESK_FLAGS_FILE"
ENV_SIMULATE_RPS = "SUPPORT_DESK_SIMULATE_RPS"
ENV_API_TOKEN = "SUPPORT_DESK_API_TOKEN"

SERVICE_VERSION = "1.4.0"


@dataclass(frozen=True)
class DeskConfig:
    """Everything that changes how the service behaves; the flags file changes it while it runs."""

    build: Build = "good"
    flags_file: Path | None = None
    simulate_rps: float = 0.0
    #: How often the flagd file provider looks at the file; a change is served within about this long.
    flag_poll_ms: int = 200
    #: When set, every API operation requires `Authorization: Bearer <token>` (declared in the OpenAPI document).
    api_token: str | None = None
    #: Share of simulated conversations that miss their SLA (the seeds' guard trips above 5%).
    sla_overdue_rate: float = 0.02
    version: str = SERVICE_VERSION
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.build not in BUILDS:
            raise ValueError(f"build must be one of {', '.join(BUILDS)}, not {self.build!r}")
        if self.simulate_rps < 0:
            raise ValueError("simulate_rps cannot be negative")
        if not 0.0 <= self.sla_overdue_rate <= 1.0:
            raise ValueError("sla_overdue_rate is a share between 0 and 1")
        if self.flag_poll_ms < 10:
            raise ValueError("flag_poll_ms must be at least 10")

    @classmethod
    def from_env(cls) -> DeskConfig:
        flags = os.environ.get(ENV_FLAGS_FILE)
        build = os.environ.get(ENV_BUILD, "good")
        return cls(
            build=build,  # type: ignore[arg-type]  # validated in __post_init__
            flags_file=Path(flags) if flags else None,
            simulate_rps=float(os.environ.get(ENV_SIMULATE_RPS) or 0),
            api_token=os.environ.get(ENV_API_TOKEN) or None,
        )

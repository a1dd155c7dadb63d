"""Deterministic workflow code: the release pipeline, its gates, and the short audited workflows.

The package itself imports nothing: the workflow sandbox imports a workflow's module afresh for
every run it starts, parent package first, so a run of `ReleaseWorkflow` loads
`workflows.release` (and what it imports) and not every other workflow as well. The names below
are resolved on first use outside the sandbox (`from workflows import WORKFLOWS`).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ReleaseWorkflow": "workflows.release",
    "AccessChangeWorkflow": "workflows.access",
    "FlagChangeWorkflow": "workflows.flags",
    "FlagReadWorkflow": "workflows.flags",
    "PilotHealthWorkflow": "workflows.reports",
    "GovernanceReviewWorkflow": "workflows.reports",
}

__all__ = ["WORKFLOWS", *_WHERE]


def __getattr__(name: str) -> Any:
    if name == "WORKFLOWS":
        return [__getattr__(n) for n in _WHERE]
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'workflows' has no attribute {name!r}")

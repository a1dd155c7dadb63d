"""Deterministic workflow code: the release pipeline, its gates, and the short audited workflows."""

from workflows.access import AccessChangeWorkflow
from workflows.flags import FlagChangeWorkflow, FlagReadWorkflow
from workflows.release import ReleaseWorkflow

WORKFLOWS = [ReleaseWorkflow, AccessChangeWorkflow, FlagChangeWorkflow, FlagReadWorkflow]

__all__ = [
    "WORKFLOWS",
    "AccessChangeWorkflow",
    "FlagChangeWorkflow",
    "FlagReadWorkflow",
    "ReleaseWorkflow",
]

"""Deterministic workflow code: the release pipeline, its gates, and the short audited workflows."""

from workflows.release import ReleaseWorkflow

WORKFLOWS = [ReleaseWorkflow]

__all__ = ["WORKFLOWS", "ReleaseWorkflow"]

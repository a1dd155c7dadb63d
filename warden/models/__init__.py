"""Pydantic models shared by workflows, activities, the CLI and the HTTP API."""

from warden.models.plan import PlanError, ReleasePlan, Stage, load_plan, parse_plan, release_id

__all__ = ["PlanError", "ReleasePlan", "Stage", "load_plan", "parse_plan", "release_id"]

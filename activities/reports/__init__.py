"""Reports the committee decides on: go/no-go, pilot health, release notes, retrospective and
the monthly governance review, built from a release's history, its status and the audit store."""

from activities.reports.activities import (
    GOVERNANCE_REVIEW_WORKFLOW,
    GOVERNANCE_SCHEDULE_ID,
    PILOT_HEALTH_WORKFLOW,
    ReportActivities,
    ReportBuilder,
    pilot_schedule_id,
    report_name,
    upsert_schedule,
)

__all__ = [
    "GOVERNANCE_REVIEW_WORKFLOW",
    "GOVERNANCE_SCHEDULE_ID",
    "PILOT_HEALTH_WORKFLOW",
    "ReportActivities",
    "ReportBuilder",
    "pilot_schedule_id",
    "report_name",
    "upsert_schedule",
]

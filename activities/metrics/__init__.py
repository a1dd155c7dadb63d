"""Metric checks and guards: providers, the evaluation engine and the `run_checks` activity."""

from activities.metrics.activities import MetricActivities, resume_point
from activities.metrics.clock import Clock, ManualClock, SystemClock
from activities.metrics.engine import CheckRun
from activities.metrics.providers import (
    MeasureContext,
    MetricError,
    MetricProvider,
    Reading,
    build_providers,
)

__all__ = [
    "CheckRun",
    "Clock",
    "ManualClock",
    "MeasureContext",
    "MetricActivities",
    "MetricError",
    "MetricProvider",
    "Reading",
    "SystemClock",
    "build_providers",
    "resume_point",
]

"""Named timeouts and retry policies: every activity call in the workflows takes its options here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

#: Errors that retrying cannot fix; activities raise them as non-retryable ApplicationErrors too.
NON_RETRYABLE = [
    "InvalidSpec",
    "GateConfigError",
    "FlagNotFound",
    "BackendConfigError",
    "ValidationError",
]

QUICK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=NON_RETRYABLE,
)

#: Flag writes and restores keep trying: leaving flags half-changed is the worst outcome.
PERSISTENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
    non_retryable_error_types=NON_RETRYABLE,
)

GATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
    non_retryable_error_types=NON_RETRYABLE,
)


def audit_options() -> dict[str, Any]:
    """Local activity: written by the worker that decided, keyed by event id."""
    return {
        "start_to_close_timeout": timedelta(seconds=10),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(milliseconds=200),
            maximum_interval=timedelta(seconds=5),
            maximum_attempts=0,
        ),
    }


def smoke_options(total_timeout: timedelta) -> dict[str, Any]:
    return {
        "start_to_close_timeout": total_timeout + timedelta(seconds=10),
        "retry_policy": QUICK_RETRY,
    }


def contract_options(time_budget: timedelta) -> dict[str, Any]:
    return {
        "start_to_close_timeout": time_budget + timedelta(minutes=2),
        "heartbeat_timeout": timedelta(seconds=60),
        "retry_policy": GATE_RETRY,
    }


def checks_options(expected: timedelta) -> dict[str, Any]:
    """Pre-promotion checks and guards: long-running, heartbeating with their counters."""
    return {
        "start_to_close_timeout": expected + timedelta(minutes=5),
        "heartbeat_timeout": timedelta(seconds=30),
        "retry_policy": PERSISTENT_RETRY,
    }


def flag_read_options() -> dict[str, Any]:
    return {
        "start_to_close_timeout": timedelta(seconds=30),
        "retry_policy": QUICK_RETRY,
    }


#: A flag write retries for about a minute; then the stage fails and the release rolls back.
FLAG_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=15),
    maximum_attempts=6,
    non_retryable_error_types=NON_RETRYABLE,
)


def flag_write_options() -> dict[str, Any]:
    return {
        "start_to_close_timeout": timedelta(seconds=30),
        "retry_policy": FLAG_WRITE_RETRY,
    }


def flag_restore_options() -> dict[str, Any]:
    """One restore round; the workflow repeats rounds (with an alert) until the read-back matches."""
    return {
        "start_to_close_timeout": timedelta(seconds=60),
        "retry_policy": FLAG_WRITE_RETRY,
    }


def governance_options() -> dict[str, Any]:
    return {
        "start_to_close_timeout": timedelta(seconds=30),
        "retry_policy": QUICK_RETRY,
    }


def governance_write_options() -> dict[str, Any]:
    """Applying an approved access change keeps trying: the approval is already on record."""
    return {
        "start_to_close_timeout": timedelta(seconds=30),
        "retry_policy": PERSISTENT_RETRY,
    }


def notice_options() -> dict[str, Any]:
    """Notices are best effort: a few tries, then the release goes on (and says so)."""
    return {
        "start_to_close_timeout": timedelta(seconds=30),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=1),
            maximum_interval=timedelta(seconds=10),
            maximum_attempts=3,
        ),
    }


def report_options() -> dict[str, Any]:
    """Report activities heartbeat while they read and write, so a worker that dies in the middle
    is noticed in seconds and the report (or the release log entry) is written by the next one."""
    return {
        "start_to_close_timeout": timedelta(minutes=2),
        "heartbeat_timeout": timedelta(seconds=10),
        "retry_policy": QUICK_RETRY,
    }

"""Every timeout and retry policy of the workflows, in one place."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Database writes: retry until the database is back; a ticket must never be dropped because
# PostgreSQL restarted. Non-retryable errors are the ones no retry can fix.
DATABASE_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["AgentNotFound", "InvalidIntake"],
)
DATABASE_WRITE_TIMEOUT = timedelta(seconds=30)

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

# Provider calls: Temporal's policy is the only retry (the client libraries' own are off).
# Throttling overrides the interval with the provider's Retry-After (next_retry_delay).
# A poll that cannot finish within FETCH_GIVE_UP is abandoned until the next interval, so a
# long provider outage never keeps a mailbox from hearing `disconnect`.
FETCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    non_retryable_error_types=["AuthExpired"],
)
FETCH_ATTEMPT_TIMEOUT = timedelta(minutes=2)
# A killed worker is noticed by missed heartbeats within these, and the activity runs again
# elsewhere (the fetch heartbeats from a helper thread during provider calls).
FETCH_HEARTBEAT = timedelta(seconds=15)
MAIL_PROCESSING_HEARTBEAT = timedelta(seconds=10)
FETCH_GIVE_UP = timedelta(minutes=10)
# The fetch runs as a local activity: a retry sooner than this waits in the worker, a later one
# on a durable timer (so a worker restart does not lose it).
FETCH_LOCAL_RETRY_THRESHOLD = timedelta(seconds=10)

# Filtering and ticket creation touch only the database.
MAIL_PROCESSING_TIMEOUT = timedelta(minutes=5)

# Setting up or renewing push: Graph validates our URL before it answers (up to 10 s), and a
# renewal that fails is tried again at the next renewal time, so a few quick attempts do.
PUSH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=4,
    non_retryable_error_types=["AuthExpired"],
)
PUSH_TIMEOUT = timedelta(minutes=1)
# Webhook delivery rounds (workflows/webhooks.py). A round's failures are the receivers' and
# are recorded, not raised: the activity fails only when the database does, and then it is
# retried until the database is back. A killed worker's round is taken over after the
# heartbeat timeout and sends again what it had not recorded (at least once).
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# A round is at most ROUND_SIZE deliveries, a few at a time, each at most 15 s.
DELIVERY_ROUND_TIMEOUT = timedelta(minutes=10)
DELIVERY_HEARTBEAT = timedelta(seconds=20)
# An idle dispatcher looks at its endpoint this often anyway, in case a wake-up was lost (the
# waker signals before it records, so one is not, short of a bug): cheap enough with
# thousands of endpoints, and a bound on the delay if it ever happens.
DISPATCHER_IDLE_CHECK = timedelta(hours=1)

"""What a mailbox workflow carries: its input, its state (the `state` query's answer) and the
`settings_changed` signal's argument.

Plain data kept apart from `workflows.mailbox` and passed through the workflow sandbox: the
sandbox re-runs a workflow's own module for every workflow it caches, and these dataclasses
were most of what that cost (docs/benchmarks.md, fan-out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain import poll_interval
from domain.outcomes import MailboxStatus, MailCounts, PushState
from domain.push import PushStatus

# Continue-As-New at the server's suggestion, or after this many polls in one run anyway:
# a cached run costs the worker about 3.5 KiB more for every poll it has made (native memory,
# most likely the Temporal core's state for the run's commands), so a run of 500 polls would
# take a mailbox to about 1.9 MB (`bench.run_memory`, docs/scaling.md). 50 holds it at a few
# hundred KiB, for one workflow task more every 50 polls.
POLLS_PER_RUN = 50


@dataclass
class MailboxState:
    mailbox_id: str
    agent_id: str
    provider: str
    status: MailboxStatus = MailboxStatus.ACTIVE
    poll_interval_seconds: int = poll_interval.DEFAULT_SECONDS
    cursor: str | None = None
    last_poll_at: str | None = None  # ISO 8601, workflow time
    last_error: str | None = None
    polls: int = 0
    counts: MailCounts = field(default_factory=MailCounts)
    push: PushStatus = field(default_factory=PushStatus)
    push_renew_at: str | None = None  # ISO 8601, workflow time
    last_notification_at: str | None = None  # ISO 8601, when the API received it


@dataclass
class MailboxInput:
    state: MailboxState
    # Tests shorten runs to exercise Continue-As-New.
    polls_per_run: int = POLLS_PER_RUN


@dataclass
class SettingsChanged:
    poll_interval_seconds: int | None = None


@dataclass
class PollRequest:
    """`poll_now`'s argument (optional: a person's button sends none)."""

    reason: str = "person"  # "person", or "push" for a provider's notification
    notified_at: str | None = None  # ISO 8601: when the API received the notification


@dataclass
class PushEvent:
    """`push_event`'s argument: a Graph lifecycle notification for the mailbox's subscription
    (`reauthorizationRequired`, `subscriptionRemoved` or `missed`), or `state` from the
    worker's IMAP IDLE supervisor with how its connection stands."""

    event: str
    state: PushState | None = None
    error: str | None = None
    safety_poll_seconds: int | None = None

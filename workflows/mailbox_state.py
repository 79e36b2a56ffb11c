"""What a mailbox workflow carries: its input, its state (the `state` query's answer) and the
`settings_changed` signal's argument.

Plain data kept apart from `workflows.mailbox` and passed through the workflow sandbox: the
sandbox re-runs a workflow's own module for every workflow it caches, and these dataclasses
were most of what that cost (docs/benchmarks.md, fan-out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Continue-As-New at the server's suggestion, or after this many polls in one run anyway.
POLLS_PER_RUN = 500


@dataclass
class MailboxCounts:
    tickets_created: int = 0
    appended: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass
class MailboxState:
    mailbox_id: str
    agent_id: str
    provider: str
    status: str = "active"  # "active", "auth_expired", "disconnected"
    poll_interval_seconds: int = 60
    cursor: str | None = None
    last_poll_at: str | None = None  # ISO 8601, workflow time
    last_error: str | None = None
    polls: int = 0
    counts: MailboxCounts = field(default_factory=MailboxCounts)


@dataclass
class MailboxInput:
    state: MailboxState
    # Tests shorten runs to exercise Continue-As-New.
    polls_per_run: int = POLLS_PER_RUN


@dataclass
class SettingsChanged:
    poll_interval_seconds: int | None = None

"""A mailbox's push as the workflow keeps it, and when a mailbox with push polls and renews
(CONTRACT.md §5, research/push.md): plain data and arithmetic on the workflow's own clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.outcomes import PushState

# Both providers hold a watch or subscription about seven days; renewing daily leaves six
# days of slack for a worker outage, as Google suggests.
RENEW_EVERY = timedelta(days=1)
# Never let one run to its expiry: renew at least this long before it.
RENEW_BEFORE_EXPIRY = timedelta(hours=12)
# However early a provider says its push expires, never renew more often than this.
MIN_RENEW_WAIT = timedelta(minutes=5)
# A failed set-up is tried again after this long (a bad push URL does not mend itself faster).
RETRY_FAILED = timedelta(hours=1)
# A provider that drops notifications sent within a short gap of the last (Gmail: a second)
# leaves mail unannounced if it arrives in that gap. A poll at the gap's end catches it; it is
# needed only when the notified poll started before then. This margin covers clock skew
# between the API that stamped the notification and the Temporal server.
FOLLOW_UP_MARGIN = timedelta(milliseconds=200)


def follow_up_at(
    notified_at: datetime | None, poll_started: datetime, gap_seconds: float
) -> datetime | None:
    """When to poll again after a notified poll that found mail, or None when its own poll
    already came after the provider's drop window (a busy system never pays for one)."""
    if notified_at is None or gap_seconds <= 0:
        return None
    window_end = notified_at + timedelta(seconds=gap_seconds) + FOLLOW_UP_MARGIN
    return window_end if poll_started < window_end else None


@dataclass
class PushStatus:
    """The mailbox's push: its state, when the provider lets it lapse, why it failed."""

    state: PushState = PushState.OFF
    expires_at: str | None = None  # ISO 8601
    error: str | None = None
    # How often the safety net polls while push is live (the worker's setting).
    safety_poll_seconds: int = 900

    @property
    def expires(self) -> datetime | None:
        return datetime.fromisoformat(self.expires_at) if self.expires_at else None


def poll_interval(poll_interval_seconds: int, push: PushState, safety_seconds: int) -> int:
    """With push live, polling is the safety net: at the longer of the two intervals."""
    if push is PushState.LIVE:
        return max(poll_interval_seconds, safety_seconds)
    return poll_interval_seconds


def renew_at(now: datetime, expires_at: datetime | None, push: PushState) -> datetime | None:
    """When to renew (or, after a failure, set up again) the push; None when it is off."""
    if push is PushState.OFF:
        return None
    if push is PushState.FAILED or expires_at is None:
        return now + RETRY_FAILED
    return max(now + MIN_RENEW_WAIT, min(now + RENEW_EVERY, expires_at - RENEW_BEFORE_EXPIRY))

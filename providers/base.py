"""The one protocol every mailbox provider implements, and the errors it may raise.

Providers are synchronous (google-api-python-client and MSAL are); activities run them on the
worker's thread pool. A provider never retries on its own: Temporal's retry policy is the only
one, so a provider classifies each failure and raises at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from domain.credentials import Credentials

__all__ = [
    "AuthExpired",
    "Credentials",
    "CursorExpired",
    "MailboxProvider",
    "ProviderError",
    "RawMessage",
    "SyncPage",
    "Throttled",
    "Transient",
    "most_severe",
]


class ProviderError(Exception):
    """Base of every classified provider failure."""

    kind = "error"  # the `kind` / `result` label of the provider metrics


class AuthExpired(ProviderError):
    """The provider refuses the stored credentials; only a new consent (Reconnect) helps."""

    kind = "auth_expired"


class Throttled(ProviderError):
    """Slow down: retry no sooner than `retry_after` seconds (None: the provider did not say)."""

    kind = "throttled"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Transient(ProviderError):
    """Worth retrying with backoff: 5xx, timeouts, resets, refused connections."""

    kind = "transient"


class CursorExpired(ProviderError):
    """The sync cursor is too old. Providers handle this inside `fetch_page` by catching up;
    it is public so tests and callers can name it."""


@dataclass(frozen=True)
class RawMessage:
    provider_message_id: str
    provider_thread_id: str | None
    raw: bytes
    received_at: datetime | None = None


@dataclass(frozen=True)
class SyncPage:
    """New inbox messages since a cursor, and the cursor to store once they are persisted."""

    messages: list[RawMessage]
    next_cursor: str
    more: bool
    # True when the old cursor had expired and this page comes from a catch-up listing.
    catching_up: bool = False
    skipped_ids: list[str] = field(default_factory=list)
    # Some of the page could not be fetched: wait this long before asking for the next one.
    retry_after: float | None = None


class MailboxProvider(Protocol):
    def initial_cursor(self, since: datetime) -> str:
        """A cursor whose first pages list inbox mail received since `since`, then continue
        incrementally from the moment this was called: nothing in between is missed."""
        ...

    def fetch_page(self, cursor: str, max_messages: int) -> SyncPage:
        """At most `max_messages` new inbox messages after `cursor`, raw MIME included."""
        ...

    def credentials(self) -> Credentials:
        """The current credentials, which may have been refreshed or rotated by the last call;
        the caller saves them when they changed."""
        ...


def most_severe(failures: list[ProviderError]) -> ProviderError:
    """The failure a page reports when several of its parts failed: AuthExpired beats
    Throttled beats Transient; among throttles the longest Retry-After wins."""
    for failure in failures:
        if isinstance(failure, AuthExpired):
            return failure
    throttles = [f for f in failures if isinstance(f, Throttled)]
    if throttles:
        return max(throttles, key=lambda f: f.retry_after or 0.0)
    return failures[0]

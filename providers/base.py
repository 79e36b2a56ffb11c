"""The one protocol every mailbox provider implements, and the errors it may raise.

Providers are synchronous (google-api-python-client and MSAL are); activities run them on the
worker's thread pool. A provider never retries on its own: Temporal's retry policy is the only
one, so a provider classifies each failure and raises at once.
"""

from __future__ import annotations

import email.utils
import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

from domain.credentials import Credentials

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "AuthExpired",
    "Credentials",
    "CursorExpired",
    "LoginRefused",
    "MailboxProvider",
    "ProviderError",
    "ProviderInfo",
    "PushLease",
    "PushRefused",
    "PushTarget",
    "RawMessage",
    "SyncPage",
    "Throttled",
    "Transient",
    "most_severe",
    "retry_after_seconds",
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


class PushRefused(ProviderError):
    """The provider will not push where it was asked to (an unknown Pub/Sub topic, a
    notification URL that failed Graph's validation): no retry helps until settings change."""

    kind = "push_refused"


class LoginRefused(Exception):
    """A password provider's login test failed: `code` names what failed for the API (422),
    `words` say what a person can do about it. Nothing is stored."""

    def __init__(self, code: str, words: str, field: str | None = None) -> None:
        super().__init__(words)
        self.code = code
        self.words = words
        self.field = field  # the connect form's field it concerns, if one


class CursorExpired(ProviderError):
    """The sync cursor is too old. Providers handle this inside `fetch_page` by catching up;
    it is public so tests and callers can name it."""


@dataclass(frozen=True)
class RawMessage:
    provider_message_id: str
    provider_thread_id: str | None
    raw: bytes
    received_at: datetime | None = None
    # The whole message's size when `raw` holds only its header: a provider that can tell the
    # size first hands over an oversized message undownloaded, and the filters skip it
    # (`too_large`) by this size. None: `raw` is the whole message.
    size: int | None = None


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


CursorKind = Literal["gmail_history", "graph_delta", "imap_uid"]
# "imap_idle": a connection the worker holds (api/idle_supervisor.py), not a callback: the
# workflow keeps no watch for it and learns its state from the supervisor.
PushKind = Literal["gmail_watch", "graph_subscription", "imap_idle"]
# How a person connects a mailbox: an OAuth consent in the browser, or a server and a password
# typed into a form, tested before anything is stored.
SignIn = Literal["oauth", "password"]


@dataclass(frozen=True)
class ProviderInfo:
    name: str  # what the API, the database and Temporal call it: "gmail"
    label: str  # the product, on cards: "Gmail"
    company: str  # who the person signs in with: "Google"
    connect_label: str  # the Sources button (CONTRACT.md §2)
    scopes: tuple[str, ...]  # what the consent asks for: read-only, always
    # The sign-in flow: `new_pkce_pair`, `authorization_url`, `exchange_code` (OAuth only).
    oauth_module: str | None
    client: str  # "module:Class", built with (settings, credentials)
    # "module:function" closing the connections the provider's clients share in a process.
    shared_connections: str
    cursor_kind: CursorKind
    push_kind: PushKind | None = None
    # The provider sends at most one notification per this many seconds per mailbox and drops
    # the rest (Gmail: one a second); 0: it drops none.
    push_min_interval_seconds: float = 0.0
    sign_in: SignIn = "oauth"
    # A password provider's login test (`check(settings, credentials)`, raising
    # `LoginRefused`): run before a mailbox is stored or reconnected.
    login_module: str | None = None

    def oauth(self) -> ModuleType:
        if self.oauth_module is None:
            raise ValueError(f"{self.label} signs in with a password, not OAuth")
        return importlib.import_module(self.oauth_module)

    def login(self) -> ModuleType:
        if self.login_module is None:
            raise ValueError(f"{self.label} signs in with OAuth, not a password")
        return importlib.import_module(self.login_module)

    def build(self, settings: Settings, credentials: Credentials) -> MailboxProvider:
        make: Callable[[Settings, Credentials], MailboxProvider] = _named(self.client)
        return make(settings, credentials)

    def close_shared(self) -> None:
        """Close the connections this provider's clients share, if any were ever opened."""
        module, _, _name = self.shared_connections.partition(":")
        if module in sys.modules:  # never imported: nothing to close
            _named(self.shared_connections)()

    def auth_expired_words(self) -> str:
        if self.sign_in == "password":
            return (
                f"{self.company} refused the password. Click Reconnect and enter the current one."
            )
        return (
            f"{self.company} no longer accepts this connection. Click Reconnect to sign in again."
        )


class MailboxProvider(Protocol):
    def initial_cursor(self, since: datetime) -> str:
        """A cursor whose first pages list inbox mail received since `since` (timezone-aware,
        as every datetime from the store is), then continue
        incrementally from the moment this was called: nothing in between is missed."""
        ...

    def fetch_page(self, cursor: str, max_messages: int) -> SyncPage:
        """At most `max_messages` new inbox messages after `cursor`, raw MIME included."""
        ...

    def credentials(self) -> Credentials:
        """The current credentials, which may have been refreshed or rotated by the last call;
        the caller saves them when they changed."""
        ...

    def watch(self, target: PushTarget, current: PushLease | None) -> PushLease:
        """Set push up, or renew `current`; a `current` the provider no longer knows is
        replaced by a new one. `PushRefused` where the provider cannot push there."""
        ...

    def unwatch(self, current: PushLease) -> None:
        """Stop it; one the provider no longer knows is already stopped."""
        ...


class BaseProvider:
    """What a provider may inherit: `close()` and `with` (providers hold no connections
    between calls today; shared pools do), and no push until it says how."""

    def close(self) -> None:
        return None

    def watch(self, target: PushTarget, current: PushLease | None) -> PushLease:  # noqa: ARG002
        raise PushRefused(f"{type(self).__name__} cannot push")

    def unwatch(self, current: PushLease) -> None:  # noqa: ARG002
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class PushTarget:
    """Where a provider should push, from the deployment's settings (None: not configured)."""

    gmail_topic: str | None = None  # projects/{p}/topics/{t}
    notification_url: str | None = None  # Graph change notifications
    lifecycle_url: str | None = None  # Graph lifecycle notifications
    client_state: str | None = None  # the mailbox's secret, echoed by Graph


@dataclass(frozen=True)
class PushLease:
    """A Gmail watch or a Graph subscription the provider holds for the mailbox."""

    id: str | None  # the Graph subscription id; a Gmail watch has none
    expires_at: datetime


def _named(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def retry_after_seconds(headers: Any) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or garbled."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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

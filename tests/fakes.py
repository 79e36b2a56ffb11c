"""An in-memory MailboxProvider for workflow and activity tests (the real provider is tested
against the emulator with the real client libraries)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from temporalio import activity

from core.settings import Settings
from providers.base import (
    AuthExpired,
    BaseProvider,
    Credentials,
    PushLease,
    PushRefused,
    PushTarget,
    RawMessage,
    SyncPage,
    Throttled,
    Transient,
)


def make_email(
    *,
    sender: str = "ann@customer.example",
    to: str = "support@acme.example",
    subject: str = "Printer on fire",
    body: str = "Smoke from tray 2.",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="customer.example")
    message["Date"] = format_datetime(date or datetime(2026, 11, 25, 10, 0).astimezone())
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


class FakeMailbox:
    """What the provider would hold: messages in arrival order, plus switches for trouble."""

    def __init__(self) -> None:
        self.messages: list[RawMessage] = []
        self.revoked = False
        self.throttle_once: float | None = None
        self.fail_once = False
        self.fetch_calls = 0
        # Set by `hold_fetches` to hold a fetch in progress: `fetching` is set when one
        # starts, and it returns only once `release` is set (`let_fetches_go`).
        self.fetching: threading.Event | None = None
        self.release: threading.Event | None = None
        # Graph's delta rounds: a backlog's later pages list only what was there at the
        # round's first page; mail arriving meanwhile comes in the next round.
        self.snapshot_rounds = False
        self._lock = threading.Lock()
        # Push, as a Gmail watch or Graph subscription would behave: calls recorded.
        self.watches: list[tuple[PushTarget, PushLease | None]] = []
        self.unwatches: list[PushLease] = []
        self.refuse_push = False
        self.push_lifetime = timedelta(days=7)

    def hold_fetches(self) -> threading.Event:
        """Fetches from now on hold after reading until `let_fetches_go`; returns the event
        set once one is held."""
        self.fetching, self.release = threading.Event(), threading.Event()
        return self.fetching

    def let_fetches_go(self) -> None:
        """The held fetch returns, and later ones run straight through."""
        release, self.fetching = self.release, None
        if release is not None:
            release.set()

    def deliver(self, raw: bytes, thread_id: str | None = None) -> str:
        with self._lock:
            message_id = f"m{len(self.messages) + 1}"
            self.messages.append(RawMessage(message_id, thread_id or f"t{message_id}", raw))
            return message_id


class FakeProvider(BaseProvider):
    def __init__(self, mailbox: FakeMailbox, credentials: Credentials) -> None:
        self.mailbox = mailbox
        self._credentials = credentials

    def initial_cursor(self, since: datetime) -> str:
        return "0"

    def fetch_page(self, cursor: str, max_messages: int) -> SyncPage:
        box = self.mailbox
        box.fetch_calls += 1
        if box.revoked:
            raise AuthExpired("invalid_grant")
        if box.throttle_once is not None:
            delay, box.throttle_once = box.throttle_once, None
            raise Throttled("429", retry_after=delay)
        if box.fail_once:
            box.fail_once = False
            raise Transient("503")
        # A cursor is "position", or "position:round end" inside a snapshot round.
        position, _, round_end = cursor.partition(":")
        start, limit = int(position), int(round_end or len(box.messages))
        page = box.messages[start : min(start + max_messages, limit)]
        end = start + len(page)
        more = end < limit
        next_cursor = f"{end}:{limit}" if more and box.snapshot_rounds else str(end)
        result = SyncPage(page, next_cursor, more=more)
        if box.fetching is not None and box.release is not None:
            # Held after reading, as a slow provider call would be: mail arriving now is
            # not in this page.
            box.fetching.set()
            box.release.wait(timeout=30)
        return result

    def credentials(self) -> Credentials:
        return self._credentials

    def watch(self, target: PushTarget, current: PushLease | None) -> PushLease:
        box = self.mailbox
        box.watches.append((target, current))
        if box.revoked:
            raise AuthExpired("invalid_grant")
        if box.refuse_push:
            raise PushRefused("the topic does not exist")
        lease_id = current.id if current is not None else f"sub-{len(box.watches)}"
        return PushLease(lease_id, _provider_now() + box.push_lifetime)

    def unwatch(self, current: PushLease) -> None:
        self.mailbox.unwatches.append(current)


def _provider_now() -> datetime:
    """The provider's clock agrees with Temporal's, as a real one does with the real server's:
    in an activity, the time-skipping server's time (years ahead of the wall clock after
    enough skipped tests)."""
    if activity.in_activity():
        return activity.info().current_attempt_scheduled_time
    return datetime.now(UTC)


def fake_factory(mailbox: FakeMailbox):  # type: ignore[no-untyped-def]
    def build(_settings: Settings, _provider: str, credentials: Credentials) -> FakeProvider:
        return FakeProvider(mailbox, credentials)

    return build

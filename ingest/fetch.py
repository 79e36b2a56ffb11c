"""The first step of a poll: one page of new mail from the provider into the inbound ledger,
with the cursor advanced in the same transaction, so the cursor never runs ahead of stored
mail. An idle poll (nothing new, nothing rotated) writes nothing at all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from core import metrics
from core.crypto import Cipher
from core.settings import Settings
from domain.outcomes import MailboxStatus, MailCounts
from domain.push import PushStatus
from ingest.batch import read_header_fields
from ingest.tickets import Heartbeat, make_tickets
from providers.base import ProviderError, RawMessage
from providers.cache import ProviderCache
from providers.registry import provider_info
from store import ledger, mailboxes
from store.db import transaction
from store.ledger import NewInbound
from store.models import Mailbox, utcnow

# Rows an interrupted poll left pending are picked up again, a bounded number per poll.
MAX_PENDING_CARRIED = 200


@dataclass
class FetchResult:
    # Ledger rows to make tickets of: this page's new mail plus any row an earlier,
    # interrupted poll stored but did not finish.
    ledger_ids: list[str] = field(default_factory=list)
    more: bool = False
    cursor: str | None = None
    fetched: int = 0
    # Part of the page failed (e.g. throttled batch parts): wait this long before the next.
    retry_after_seconds: float | None = None
    # A small page is made into tickets in the same activity (`ledger_ids` is then empty):
    # what became of its emails.
    made: MailCounts | None = None
    # For a push held outside the workflow (IMAP IDLE): the watch's state as the worker's
    # supervisor recorded it. The workflow adopts it from every poll, so a `state` signal
    # that never arrived (sent before the workflow started, or timed out) costs at most one
    # poll at the interval, not polling at the interval under a live watch for good.
    watch: PushStatus | None = None


def fetch_into_ledger(
    engine: Engine,
    settings: Settings,
    providers: ProviderCache,
    cipher: Callable[[], Cipher],
    mailbox_id: str,
    page_size: int,
    *,
    notified_at: datetime | None = None,
    make_tickets_up_to: int = 0,
    carry_pending: bool = True,
    heartbeat: Heartbeat = lambda: None,
) -> FetchResult:
    """Raises the provider's typed errors (`AuthExpired`, `Throttled`, `Transient`) as they
    come, and `SecretsUnavailable` when `cipher` has no key; the caller maps them.

    A page of at most `make_tickets_up_to` emails becomes tickets here and now: a pushed email
    costs one activity, not two. A backlog's pages are left to `make_tickets` in an activity
    of their own, with its own timeout and heartbeats."""
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        if mailbox is None or mailbox.status == MailboxStatus.DISCONNECTED:
            return FetchResult()
        cursor = mailbox.cursor
        # Connecting (or connecting again after a disconnect) resets the cursor and stamps
        # updated_at: the first sync looks back from then.
        connected_at = mailbox.updated_at
        provider_name = mailbox.provider
        provider, known = providers.get(mailbox.id, mailbox.provider, mailbox.credentials_encrypted)
        watch = _held_watch(mailbox, settings)
    if notified_at is not None:
        metrics.push_to_poll(provider_name, (utcnow() - notified_at).total_seconds())
    try:
        if cursor is None:
            since = connected_at - timedelta(days=settings.initial_import_days)
            cursor = provider.initial_cursor(since)
        page = provider.fetch_page(cursor, page_size)
    except ProviderError as error:
        metrics.mailbox_polled(provider_name, error.kind)
        raise
    metrics.mailbox_polled(provider_name)

    rows = [inbound_row(message) for message in page.messages]
    latest = provider.credentials()
    rotated = latest.refresh_token != known.refresh_token
    if not rows and page.next_cursor == cursor and not rotated:
        return FetchResult(more=page.more, cursor=cursor, watch=watch)  # idle: nothing to write
    ids = store_page(
        engine,
        mailbox_id,
        rows,
        next_cursor=page.next_cursor,
        credentials_encrypted=cipher().encrypt_credentials(latest) if rotated else None,
        carry_pending=carry_pending,
    )
    if ids is None:
        return FetchResult()
    if rotated:
        # The rotated refresh token is saved; forget the cached provider's stale version.
        providers.forget(mailbox_id)
    made = None
    if ids and len(ids) <= make_tickets_up_to:
        made = make_tickets(
            engine,
            mailbox_id,
            ids,
            flood_limit=settings.flood_limit_per_hour,
            heartbeat=heartbeat,
        )
        ids = []
    return FetchResult(
        ledger_ids=ids,
        more=page.more,
        cursor=page.next_cursor,
        fetched=len(rows),
        retry_after_seconds=page.retry_after,
        made=made,
        watch=watch,
    )


def _held_watch(mailbox: Mailbox, settings: Settings) -> PushStatus | None:
    if provider_info(mailbox.provider).push_kind != "imap_idle":
        return None  # the workflow keeps Gmail's watch and Graph's subscription itself
    return PushStatus(
        mailbox.push_state,
        error=mailbox.push_error,
        safety_poll_seconds=settings.push_safety_poll_seconds,
    )


def inbound_row(message: RawMessage) -> NewInbound:
    """Ledger columns from the headers; the body is read later, when a ticket is made."""
    email = read_header_fields(message.raw)
    return NewInbound(
        provider_message_id=message.provider_message_id,
        provider_thread_id=message.provider_thread_id,
        internet_message_id=email.message_id,
        from_address=email.from_address,
        from_name=email.from_name,
        subject=email.subject,
        received_at=message.received_at or email.date,
        raw=message.raw,
        size=message.size,
    )


def store_page(
    engine: Engine,
    mailbox_id: str,
    rows: Sequence[NewInbound],
    *,
    next_cursor: str | None,
    credentials_encrypted: str | None,
    carry_pending: bool = True,
) -> list[str] | None:
    """Store a fetched page in the ledger and advance the cursor in one transaction. Returns
    the rows to process (the page's, after those an interrupted poll left pending unless
    `carry_pending` is off), or None when the mailbox is gone."""
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        if mailbox is None or mailbox.status == MailboxStatus.DISCONNECTED:
            return None
        ids = ledger.insert_new(
            session, agent_id=mailbox.agent_id, mailbox_id=mailbox.id, rows=rows
        )
        fresh = set(ids)
        pending = (
            ledger.pending_ids(session, mailbox.id, MAX_PENDING_CARRIED) if carry_pending else []
        )
        carried = [i for i in pending if i not in fresh]
        mailboxes.record_poll(
            session,
            mailbox,
            cursor=next_cursor,
            credentials_encrypted=credentials_encrypted,
            polled_at=utcnow(),
        )
    return carried + ids

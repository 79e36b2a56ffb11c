"""Mailbox activities: fetch into the ledger, filter, make tickets, set status.

Each is idempotent: the ledger's unique (mailbox, provider message id), its outcomes and the
tickets' unique source reference make a retried or doubled activity change nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import keep_alive
from activities.mail_tickets import process_message
from activities.mailbox_types import (
    CreateTicketsInput,
    CreateTicketsResult,
    FetchInput,
    FetchResult,
    FilterInput,
    FilterResult,
    SetStatusInput,
)
from deskclone import metrics
from deskclone.crypto import Cipher
from deskclone.settings import Settings
from domain.loop_guards import check_loop
from domain.mime import normalise_email
from domain.senders import check_sender
from providers.base import AuthExpired, Credentials, MailboxProvider, Throttled, Transient
from store import ledger, mailboxes
from store.db import transaction
from store.ledger import NewInbound
from store.models import Mailbox, utcnow

log = logging.getLogger("deskclone.activities.mailbox")

MAX_EMAIL_BYTES = 25 * 1024 * 1024
# For an oversized email only the start is parsed, enough for its headers.
HEADER_SCAN_BYTES = 256 * 1024
# Rows an interrupted poll left pending are picked up again, a bounded number per poll.
MAX_PENDING_CARRIED = 200
MIN_PAGE_SIZE = 10
MAX_CACHED_PROVIDERS = 64

ProviderFactory = Callable[[Settings, str, Credentials], MailboxProvider]


class MailboxActivities:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        cipher: Cipher | None,
        provider_factory: ProviderFactory,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._maybe_cipher = cipher
        self._factory = provider_factory
        # One live provider per mailbox and credentials version: its access token stays in
        # memory, so an idle poll costs one provider request and no database write.
        # Bounded (least recently used first out): a provider client holds ~0.5 MB, and a
        # worker may serve thousands of mailboxes.
        self._providers: OrderedDict[str, tuple[str, MailboxProvider, Credentials]] = OrderedDict()

    @property
    def _cipher(self) -> Cipher:
        if self._maybe_cipher is None:
            raise ApplicationError(
                "DESKCLONE_SECRET_KEY is not set on this worker; it decrypts mailbox tokens",
                type="SecretsUnavailable",
            )
        return self._maybe_cipher

    def _provider(self, mailbox: Mailbox) -> tuple[MailboxProvider, Credentials]:
        token = mailbox.credentials_encrypted
        if token is None:
            raise ApplicationError(
                "the mailbox has no credentials; reconnect it",
                type="AuthExpired",
                non_retryable=True,
            )
        version = hashlib.sha256(token.encode()).hexdigest()
        cached = self._providers.get(mailbox.id)
        if cached is not None and cached[0] == version:
            self._providers.move_to_end(mailbox.id)
            return cached[1], cached[2]
        credentials = self._cipher.decrypt_credentials(token)
        provider = self._factory(self._settings, mailbox.provider, credentials)
        self._forget(mailbox.id)  # a stale version (new credentials) is closed, not leaked
        self._providers[mailbox.id] = (version, provider, credentials)
        while len(self._providers) > MAX_CACHED_PROVIDERS:
            self._forget(next(iter(self._providers)))
        return provider, credentials

    def _forget(self, mailbox_id: str) -> None:
        """Drop a cached provider and close its connections (they would otherwise linger
        until garbage collection)."""
        cached = self._providers.pop(mailbox_id, None)
        close = getattr(cached[1], "close", None) if cached is not None else None
        if close is not None:
            close()

    @activity.defn(name="fetch_new_mail")
    def fetch_new_mail(self, inp: FetchInput) -> FetchResult:
        with transaction(self._engine) as session:
            mailbox = mailboxes.get_for_worker(session, inp.mailbox_id)
            if mailbox is None or mailbox.status == "disconnected":
                return FetchResult()
            cursor = mailbox.cursor
            # Connecting (or connecting again after a disconnect) resets the cursor and stamps
            # updated_at: the first sync looks back from then.
            connected_at = mailbox.updated_at
            agent_id = mailbox.agent_id
            provider_name = mailbox.provider
            provider, known = self._provider(mailbox)
        try:
            with keep_alive():
                if cursor is None:
                    since = _aware(connected_at) - timedelta(
                        days=self._settings.initial_import_days
                    )
                    cursor = provider.initial_cursor(since)
                page = provider.fetch_page(cursor, _page_size(inp.max_messages))
        except AuthExpired as error:
            metrics.mailbox_polled(provider_name, "auth_expired")
            self._forget(inp.mailbox_id)
            raise ApplicationError(str(error), type="AuthExpired", non_retryable=True) from error
        except Throttled as error:
            metrics.mailbox_polled(provider_name, "throttled")
            delay = timedelta(seconds=error.retry_after) if error.retry_after else None
            raise ApplicationError(str(error), type="Throttled", next_retry_delay=delay) from error
        except Transient as error:
            metrics.mailbox_polled(provider_name, "transient")
            raise ApplicationError(str(error), type="Transient") from error
        metrics.mailbox_polled(provider_name)

        rows = [
            _inbound(m.provider_message_id, m.provider_thread_id, m.raw, m.received_at)
            for m in page.messages
        ]
        latest = provider.credentials()
        rotated = latest.refresh_token != known.refresh_token
        if not rows and page.next_cursor == cursor and not rotated:
            # The idle poll: nothing new, nothing to write.
            return FetchResult(ledger_ids=[], more=page.more, cursor=cursor, fetched=0)
        with transaction(self._engine) as session:
            mailbox = mailboxes.get_for_worker(session, inp.mailbox_id)
            if mailbox is None or mailbox.status == "disconnected":
                return FetchResult()
            ids = ledger.insert_new(session, agent_id=agent_id, mailbox_id=mailbox.id, rows=rows)
            carried = _still_pending(session, mailbox.id, exclude=set(ids))
            # Same transaction as the ledger rows: the cursor never runs ahead of stored mail.
            encrypted = self._cipher.encrypt_credentials(latest) if rotated else None
            mailboxes.record_poll(
                session,
                mailbox,
                cursor=page.next_cursor,
                credentials_encrypted=encrypted,
                polled_at=utcnow(),
            )
        if rotated:
            # The rotated refresh token is saved; forget the cached provider's stale version.
            self._forget(inp.mailbox_id)
        return FetchResult(
            ledger_ids=carried + ids,
            more=page.more,
            cursor=page.next_cursor,
            fetched=len(rows),
            retry_after_seconds=page.retry_after,
        )

    @activity.defn(name="filter_mail")
    def filter_mail(self, inp: FilterInput) -> FilterResult:
        """Marks skipped rows with their reason; returns the ids that may become tickets."""
        accepted: list[str] = []
        skipped = 0
        with transaction(self._engine) as session:
            mailbox = mailboxes.get_for_worker(session, inp.mailbox_id)
            if mailbox is None:
                return FilterResult()
            for row in ledger.rows(session, inp.ledger_ids, outcome="pending"):
                activity.heartbeat()
                if row.size > MAX_EMAIL_BYTES:
                    ledger.mark(
                        session,
                        row,
                        "skipped",
                        f"the email is {row.size / 1e6:.1f} MB, over the 25 MB limit",
                    )
                    metrics.message_skipped(metrics.SKIP_TOO_LARGE)
                    skipped += 1
                    continue
                email = normalise_email(row.raw)
                loop = check_loop(email, mailbox.address)
                if not loop.accepted:
                    ledger.mark(session, row, "skipped", loop.reason)
                    metrics.message_skipped(loop.outcome.value)
                    skipped += 1
                    continue
                sender = check_sender(email.from_address, mailbox.allowed_senders)
                if not sender.allowed:
                    ledger.mark(session, row, "skipped", sender.reason)
                    metrics.message_skipped(metrics.SKIP_SENDER_NOT_ALLOWED)
                    skipped += 1
                    continue
                accepted.append(row.id)
        return FilterResult(accepted_ids=accepted, skipped=skipped)

    @activity.defn(name="create_tickets")
    def create_tickets(self, inp: CreateTicketsInput) -> CreateTicketsResult:
        """One transaction per email: its ticket (or appended message) and its ledger outcome
        commit together, so a crash between two emails loses or doubles neither."""
        result = CreateTicketsResult()
        for ledger_id in inp.ledger_ids:
            # Heartbeats let Temporal notice a killed worker in seconds, not at the timeout.
            activity.heartbeat()
            try:
                with transaction(self._engine) as session:
                    outcome = process_message(
                        session,
                        inp.mailbox_id,
                        ledger_id,
                        flood_limit=self._settings.flood_limit_per_hour,
                    )
            except DBAPIError:
                raise  # the database is in trouble: retry the activity, lose nothing
            except Exception as error:  # a bad email must not stop the mailbox
                log.exception("ledger row %s could not become a ticket", ledger_id)
                outcome = self._mark_failed(ledger_id, error)
            metrics.mail_outcome(outcome)
            if outcome == "ticket_created":
                result.tickets_created += 1
            elif outcome == "appended":
                result.appended += 1
            elif outcome == "skipped":
                result.skipped += 1
            elif outcome == "failed":
                result.failed += 1
        return result

    def _mark_failed(self, ledger_id: str, error: Exception) -> str:
        with transaction(self._engine) as session:
            for row in ledger.rows(session, [ledger_id], outcome="pending"):
                ledger.mark(
                    session, row, "failed", f"could not be processed: {type(error).__name__}"
                )
        return "failed"

    @activity.defn(name="set_mailbox_status")
    def set_mailbox_status(self, inp: SetStatusInput) -> None:
        with transaction(self._engine) as session:
            mailbox = mailboxes.get_for_worker(session, inp.mailbox_id)
            if mailbox is None or mailbox.status == "disconnected":
                return
            metrics.mailbox_status_changed(mailbox.provider, mailbox.status, inp.status)
            mailboxes.set_status(session, mailbox, inp.status, inp.last_error)


def _page_size(requested: int) -> int:
    """Each retry of a failed fetch asks for half as much: a batch is as slow as its slowest
    part, so on a slow or flaky provider small pages still get through where big ones time out."""
    attempt = activity.info().attempt
    return max(MIN_PAGE_SIZE, requested >> min(attempt - 1, 8))


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; everything is stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _inbound(
    provider_message_id: str, thread_id: str | None, raw: bytes, received_at: datetime | None
) -> NewInbound:
    """Ledger columns from the headers; the full body is parsed later, when it is needed."""
    email = normalise_email(raw[:HEADER_SCAN_BYTES] if len(raw) > MAX_EMAIL_BYTES else raw)
    return NewInbound(
        provider_message_id=provider_message_id,
        provider_thread_id=thread_id,
        internet_message_id=email.message_id,
        from_address=email.from_address,
        from_name=email.from_name,
        subject=email.subject,
        received_at=received_at or email.date,
        raw=raw,
    )


def _still_pending(session: Session, mailbox_id: str, exclude: set[str]) -> list[str]:
    return [
        i for i in ledger.pending_ids(session, mailbox_id, MAX_PENDING_CARRIED) if i not in exclude
    ]

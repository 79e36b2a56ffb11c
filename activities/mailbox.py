"""Mailbox activities: fetch into the ledger, filter, make tickets, set status.

Each is idempotent: the ledger's unique (mailbox, provider message id), its outcomes and the
tickets' unique source reference make a retried or doubled activity change nothing twice.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import keep_alive
from activities.mail_steps import filter_rows, inbound_row, make_tickets, store_page
from activities.mailbox_types import (
    CreateTicketsInput,
    CreateTicketsResult,
    FetchInput,
    FetchResult,
    FilterInput,
    FilterResult,
    SetStatusInput,
)
from core import metrics
from core.crypto import Cipher
from core.settings import Settings
from providers.base import AuthExpired, Credentials, MailboxProvider, Throttled, Transient
from store import mailboxes
from store.db import transaction
from store.models import Mailbox

MIN_PAGE_SIZE = 10
# One Gmail batch (two and a half Graph batches).
RETRY_PAGE_SIZE = 50
# A cached provider is its mailbox's credentials and access token (~1.3 KiB for Gmail, ~5 KiB
# for Outlook, whose MSAL cache it holds): the Gmail service and the connections are shared
# per process (providers.gmail.GmailApi, providers.google_transport, providers.graph_client).
# Large enough that a worker's mailboxes stay cached, so an access token is renewed once an
# hour, not on every poll of a mailbox that fell out of the cache.
MAX_CACHED_PROVIDERS = 10_000

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
        # Bounded (least recently used first out); shared by the activity threads.
        self._providers: OrderedDict[str, tuple[str, MailboxProvider, Credentials]] = OrderedDict()
        self._providers_lock = threading.Lock()

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
        with self._providers_lock:
            cached = self._providers.get(mailbox.id)
            if cached is not None and cached[0] == version:
                self._providers.move_to_end(mailbox.id)
                return cached[1], cached[2]
        credentials = self._cipher.decrypt_credentials(token)
        provider = self._factory(self._settings, mailbox.provider, credentials)
        self._forget(mailbox.id)  # a stale version (new credentials) is closed, not leaked
        with self._providers_lock:
            self._providers[mailbox.id] = (version, provider, credentials)
            evicted = [
                self._providers.popitem(last=False)[1]
                for _ in range(len(self._providers) - MAX_CACHED_PROVIDERS)
            ]
        for _, old, _ in evicted:
            close = getattr(old, "close", None)
            if close is not None:
                close()
        return provider, credentials

    def _forget(self, mailbox_id: str) -> None:
        """Drop a cached provider and close it (providers hold no connections between calls
        today; closing keeps that a provider's own business)."""
        with self._providers_lock:
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

        rows = [inbound_row(message) for message in page.messages]
        latest = provider.credentials()
        rotated = latest.refresh_token != known.refresh_token
        if not rows and page.next_cursor == cursor and not rotated:
            # The idle poll: nothing new, nothing to write.
            return FetchResult(ledger_ids=[], more=page.more, cursor=cursor, fetched=0)
        ids = store_page(
            self._engine,
            inp.mailbox_id,
            rows,
            next_cursor=page.next_cursor,
            credentials_encrypted=self._cipher.encrypt_credentials(latest) if rotated else None,
        )
        if ids is None:
            return FetchResult()
        if rotated:
            # The rotated refresh token is saved; forget the cached provider's stale version.
            self._forget(inp.mailbox_id)
        return FetchResult(
            ledger_ids=ids,
            more=page.more,
            cursor=page.next_cursor,
            fetched=len(rows),
            retry_after_seconds=page.retry_after,
        )

    @activity.defn(name="filter_mail")
    def filter_mail(self, inp: FilterInput) -> FilterResult:
        return filter_rows(self._engine, inp.mailbox_id, inp.ledger_ids, activity.heartbeat)

    @activity.defn(name="create_tickets")
    def create_tickets(self, inp: CreateTicketsInput) -> CreateTicketsResult:
        return make_tickets(
            self._engine,
            inp.mailbox_id,
            inp.ledger_ids,
            flood_limit=self._settings.flood_limit_per_hour,
            heartbeat=activity.heartbeat,
        )

    @activity.defn(name="set_mailbox_status")
    def set_mailbox_status(self, inp: SetStatusInput) -> None:
        with transaction(self._engine) as session:
            mailbox = mailboxes.get_for_worker(session, inp.mailbox_id)
            if mailbox is None or mailbox.status == "disconnected":
                return
            metrics.mailbox_status_changed(mailbox.provider, mailbox.status, inp.status)
            mailboxes.set_status(session, mailbox, inp.status, inp.last_error)


def _page_size(requested: int) -> int:
    """A retry of a failed fetch asks for one batch's worth, then half as much each time: a
    batch is as slow as its slowest part, so on a slow or flaky provider small pages still
    get through where big ones time out."""
    return page_size_for_attempt(requested, activity.info().attempt)


def page_size_for_attempt(requested: int, attempt: int) -> int:
    if attempt <= 1:
        return requested
    return max(MIN_PAGE_SIZE, min(requested, RETRY_PAGE_SIZE) >> min(attempt - 2, 8))


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; everything is stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)

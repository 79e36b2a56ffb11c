"""Mailbox activities: thin shells over ingest/ (fetch into the ledger, make tickets) and
store/ (set status). Each maps the provider's typed errors to Temporal's and heartbeats.

Each is idempotent: the ledger's unique (mailbox, provider message id), its outcomes and the
tickets' unique source reference make a retried or doubled activity change nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeat, keep_alive
from activities.mailbox_types import (
    CreateTicketsInput,
    CreateTicketsResult,
    FetchInput,
    FetchResult,
    FilterInput,
    FilterResult,
    KeepPushInput,
    SetStatusInput,
)
from core import metrics
from core.crypto import Cipher, SecretsUnavailable
from core.settings import Settings
from domain.outcomes import MailboxStatus
from domain.push import PushStatus
from ingest.fetch import fetch_into_ledger
from ingest.push import keep_push, release
from ingest.tickets import filter_rows, make_tickets
from providers.base import AuthExpired, Throttled, Transient
from providers.cache import ProviderCache, ProviderFactory
from store import mailboxes
from store.db import transaction

MIN_PAGE_SIZE = 10
# One Gmail batch (two and a half Graph batches).
RETRY_PAGE_SIZE = 50


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
        self.providers = ProviderCache(settings, self._cipher, provider_factory)

    def _cipher(self) -> Cipher:
        if self._maybe_cipher is None:
            raise SecretsUnavailable(
                "DESKCLONE_SECRET_KEY is not set on this worker; it decrypts mailbox tokens"
            )
        return self._maybe_cipher

    @activity.defn(name="fetch_new_mail")
    def fetch_new_mail(self, inp: FetchInput) -> FetchResult:
        notified = datetime.fromisoformat(inp.notified_at) if inp.notified_at else None
        with _provider_errors_mapped(self.providers, inp.mailbox_id), keep_alive():
            return fetch_into_ledger(
                self._engine,
                self._settings,
                self.providers,
                self._cipher,
                inp.mailbox_id,
                _page_size(inp.max_messages),
                notified_at=notified,
                make_tickets_up_to=inp.make_tickets_up_to,
                carry_pending=inp.carry_pending,
                heartbeat=heartbeat,
            )

    @activity.defn(name="keep_push")
    def keep_push(self, inp: KeepPushInput) -> PushStatus:
        """Set up, renew or replace the mailbox's Gmail watch or Graph subscription."""
        with _provider_errors_mapped(self.providers, inp.mailbox_id):
            return keep_push(
                self._engine,
                self._settings,
                self.providers,
                self._cipher,
                inp.mailbox_id,
                replace=inp.replace,
            )

    @activity.defn(name="release_mailbox")
    def release_mailbox(self, mailbox_id: str) -> None:
        """A disconnected mailbox's last step: stop its push, then forget its credentials."""
        release(self._engine, self.providers, mailbox_id)

    @activity.defn(name="filter_mail")
    def filter_mail(self, inp: FilterInput) -> FilterResult:
        accepted, skipped = filter_rows(
            self._engine, inp.mailbox_id, inp.ledger_ids, activity.heartbeat
        )
        return FilterResult(accepted_ids=accepted, skipped=skipped)

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
            if mailbox is None or mailbox.status == MailboxStatus.DISCONNECTED:
                return
            metrics.mailbox_status_changed(mailbox.provider, mailbox.status, inp.status)
            mailboxes.set_status(session, mailbox, inp.status, inp.last_error)


@contextmanager
def _provider_errors_mapped(providers: ProviderCache, mailbox_id: str) -> Iterator[None]:
    """The provider's typed errors as Temporal's: AuthExpired is final (only Reconnect helps),
    Throttled waits as long as the provider asked, the rest retry with backoff."""
    try:
        yield
    except AuthExpired as error:
        providers.forget(mailbox_id)
        raise ApplicationError(str(error), type="AuthExpired", non_retryable=True) from error
    except Throttled as error:
        delay = timedelta(seconds=error.retry_after) if error.retry_after else None
        raise ApplicationError(str(error), type="Throttled", next_retry_delay=delay) from error
    except Transient as error:
        raise ApplicationError(str(error), type="Transient") from error
    except SecretsUnavailable as error:
        raise ApplicationError(str(error), type="SecretsUnavailable") from error


def _page_size(requested: int) -> int:
    """A retry of a failed fetch asks for one batch's worth, then half as much each time: a
    batch is as slow as its slowest part, so on a slow or flaky provider small pages still
    get through where big ones time out."""
    return page_size_for_attempt(requested, activity.info().attempt)


def page_size_for_attempt(requested: int, attempt: int) -> int:
    if attempt <= 1:
        return requested
    return max(MIN_PAGE_SIZE, min(requested, RETRY_PAGE_SIZE) >> min(attempt - 2, 8))

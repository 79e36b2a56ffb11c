"""The database side of a poll, as plain functions: store a fetched page, filter it, make the
tickets. The mailbox activities wrap them with Temporal's heartbeats and error types; the
ingest benchmark's no-Temporal baseline calls the very same functions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from activities.mail_tickets import process_batch
from activities.mailbox_types import CreateTicketsResult, FilterResult
from core import metrics
from domain.loop_guards import check_loop
from domain.mime import read_headers
from domain.senders import check_sender
from providers.base import RawMessage
from store import ledger, mailboxes
from store.db import transaction
from store.ledger import NewInbound
from store.models import utcnow

log = logging.getLogger("deskclone.activities.mail_steps")

MAX_EMAIL_BYTES = 25 * 1024 * 1024
# For an oversized email only the start is read, enough for its headers.
HEADER_SCAN_BYTES = 256 * 1024
# Rows an interrupted poll left pending are picked up again, a bounded number per poll.
MAX_PENDING_CARRIED = 200
# Emails per ticket transaction: fewer round trips and commits per email, while the agent
# row lock (ticket numbers) is held for tens of milliseconds, not seconds.
TICKET_BATCH = 25

Heartbeat = Callable[[], None]


def inbound_row(message: RawMessage) -> NewInbound:
    """Ledger columns from the headers; the body is read later, when a ticket is made."""
    raw = message.raw
    email = read_headers(raw[:HEADER_SCAN_BYTES] if len(raw) > MAX_EMAIL_BYTES else raw)
    return NewInbound(
        provider_message_id=message.provider_message_id,
        provider_thread_id=message.provider_thread_id,
        internet_message_id=email.message_id,
        from_address=email.from_address,
        from_name=email.from_name,
        subject=email.subject,
        received_at=message.received_at or email.date,
        raw=raw,
    )


def store_page(
    engine: Engine,
    mailbox_id: str,
    rows: Sequence[NewInbound],
    *,
    next_cursor: str | None,
    credentials_encrypted: str | None,
) -> list[str] | None:
    """Store a fetched page in the ledger and advance the cursor in one transaction, so the
    cursor never runs ahead of stored mail. Returns the rows to process (the page's, after
    those an interrupted poll left pending), or None when the mailbox is gone."""
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        if mailbox is None or mailbox.status == "disconnected":
            return None
        ids = ledger.insert_new(
            session, agent_id=mailbox.agent_id, mailbox_id=mailbox.id, rows=rows
        )
        fresh = set(ids)
        carried = [
            i
            for i in ledger.pending_ids(session, mailbox.id, MAX_PENDING_CARRIED)
            if i not in fresh
        ]
        mailboxes.record_poll(
            session,
            mailbox,
            cursor=next_cursor,
            credentials_encrypted=credentials_encrypted,
            polled_at=utcnow(),
        )
    return carried + ids


def filter_rows(
    engine: Engine, mailbox_id: str, ledger_ids: Sequence[str], heartbeat: Heartbeat
) -> FilterResult:
    """Marks skipped rows with their reason; returns the ids that may become tickets."""
    accepted: list[str] = []
    skipped = 0
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        if mailbox is None:
            return FilterResult()
        for row in ledger.rows(session, ledger_ids, outcome="pending"):
            heartbeat()
            if row.size > MAX_EMAIL_BYTES:
                reason = f"the email is {row.size / 1e6:.1f} MB, over the 25 MB limit"
                ledger.mark(session, row, "skipped", reason)
                metrics.message_skipped(metrics.SKIP_TOO_LARGE)
                skipped += 1
                continue
            email = read_headers(row.raw)
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


def make_tickets(
    engine: Engine,
    mailbox_id: str,
    ledger_ids: Sequence[str],
    *,
    flood_limit: int,
    heartbeat: Heartbeat,
    batch_size: int = TICKET_BATCH,
) -> CreateTicketsResult:
    """Each email's ticket (or appended message) commits with its ledger outcome, a batch of
    emails per transaction, so a crash between two batches loses or doubles nothing."""
    result = CreateTicketsResult()
    for start in range(0, len(ledger_ids), batch_size):
        heartbeat()  # lets Temporal notice a killed worker in seconds, not at the timeout
        batch = ledger_ids[start : start + batch_size]
        for outcome in _batch(engine, mailbox_id, batch, flood_limit):
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


def _batch(engine: Engine, mailbox_id: str, ids: Sequence[str], flood_limit: int) -> list[str]:
    try:
        with transaction(engine) as session:
            return process_batch(session, mailbox_id, ids, flood_limit=flood_limit)
    except DBAPIError:
        raise  # the database is in trouble: retry the activity, lose nothing
    except Exception as error:
        if len(ids) > 1:
            # Something in the batch broke the write itself: find it one email at a time.
            return [
                outcome for i in ids for outcome in _batch(engine, mailbox_id, [i], flood_limit)
            ]
        log.exception("ledger row %s could not become a ticket", ids[0])
        return _mark_failed(engine, ids[0], error)


def _mark_failed(engine: Engine, ledger_id: str, error: Exception) -> list[str]:
    with transaction(engine) as session:
        rows = ledger.rows(session, [ledger_id], outcome="pending")
        for row in rows:
            ledger.mark(session, row, "failed", f"could not be processed: {type(error).__name__}")
    return ["failed"] * len(rows)

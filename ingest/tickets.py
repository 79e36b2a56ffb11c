"""Make the tickets for a list of ledger rows: a batch of emails per transaction, so a crash
between two batches loses or doubles nothing, and one email that breaks a batch's write
fails alone."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from core import metrics
from domain.outcomes import MailCounts, Outcome
from ingest.batch import Done, process_batch, skip_by_headers
from store import ledger, mailboxes
from store.db import transaction

log = logging.getLogger("deskclone.ingest.tickets")

# Emails per ticket transaction: fewer round trips and commits per email (25 → 50: the
# worker's CPU for a 2,000-email backlog fell about a tenth), while the agent row lock
# (ticket numbers) is held for tens of milliseconds: the batch is parsed before it is taken.
TICKET_BATCH = 50

Heartbeat = Callable[[], None]


def make_tickets(
    engine: Engine,
    mailbox_id: str,
    ledger_ids: Sequence[str],
    *,
    flood_limit: int,
    heartbeat: Heartbeat,
    batch_size: int = TICKET_BATCH,
) -> MailCounts:
    """Each email's ticket (or appended message, or skip) commits with its ledger outcome."""
    counts = MailCounts()
    for start in range(0, len(ledger_ids), batch_size):
        heartbeat()  # lets Temporal notice a killed worker in seconds, not at the timeout
        batch = ledger_ids[start : start + batch_size]
        for done in _batch(engine, mailbox_id, batch, flood_limit):
            metrics.mail_outcome(done.outcome, done.skip)  # counted once committed
            counts.count(done.outcome)
    return counts


def filter_rows(
    engine: Engine, mailbox_id: str, ledger_ids: Sequence[str], heartbeat: Heartbeat
) -> tuple[list[str], int]:
    """The header filters alone, marking what they skip; returns the rows left and how many
    were skipped. Only workflow runs recorded before tickets were made in one step call it
    (the `filter_mail` activity): `make_tickets` runs every filter itself."""
    accepted: list[str] = []
    skipped: list[Done] = []
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        if mailbox is None:
            return [], 0
        for row in ledger.rows(session, ledger_ids, outcome=Outcome.PENDING):
            heartbeat()
            skip = skip_by_headers(mailbox, row)
            if skip is None:
                accepted.append(row.id)
                continue
            ledger.mark(session, row, Outcome.SKIPPED, skip.why, skip.ticket_id, skip.reason)
            skipped.append(Done(Outcome.SKIPPED, skip.reason))
    for done in skipped:
        metrics.mail_outcome(done.outcome, done.skip)
    return accepted, len(skipped)


def _batch(engine: Engine, mailbox_id: str, ids: Sequence[str], flood_limit: int) -> list[Done]:
    try:
        with transaction(engine) as session:
            return process_batch(session, mailbox_id, ids, flood_limit=flood_limit)
    except DBAPIError:
        raise  # the database is in trouble: retry the activity, lose nothing
    except Exception as error:
        if len(ids) > 1:
            # Something in the batch broke the write itself: find it one email at a time.
            return [done for i in ids for done in _batch(engine, mailbox_id, [i], flood_limit)]
        log.exception("ledger row %s could not become a ticket", ids[0])
        return _mark_failed(engine, ids[0], error)


def _mark_failed(engine: Engine, ledger_id: str, error: Exception) -> list[Done]:
    with transaction(engine) as session:
        rows = ledger.rows(session, [ledger_id], outcome=Outcome.PENDING)
        for row in rows:
            reason = f"could not be processed: {type(error).__name__}"
            ledger.mark(session, row, Outcome.FAILED, reason)
    return [Done(Outcome.FAILED)] * len(rows)

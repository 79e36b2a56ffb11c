"""Ledger rows → skipped, new tickets, or messages on the tickets they answer: one batch, one
transaction.

A batch reads what it needs in a handful of queries (its pending rows; the tickets that its
provider threads, Message-IDs and subject numbers point at; its senders' recent ticket
counts), then decides each email in order: the header fields first (cheap), the thread from
what was read, the `FILTERS` of domain/ over both, and only for an email that becomes or
joins a ticket the whole body. Everything is written in one flush. Emails of one batch see
each other exactly as they would one at a time: a reply to an email earlier in the batch
joins the ticket that email made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from domain.filters import MAX_EMAIL_BYTES, Candidate, Skip, first_skip
from domain.mime import NormalisedEmail, normalise_email, read_headers
from domain.outcomes import MailboxStatus, Outcome, SkipReason, TicketSource
from domain.quotes import trim_quoted_reply
from domain.thread_decision import (
    ThreadKeys,
    ThreadLookup,
    ThreadOutcome,
    ThreadVerdict,
    decide_thread,
)
from domain.thread_decision import thread_keys as keys_of
from store import ledger, mailboxes, tickets
from store.models import Agent, InboundMessage, Mailbox, Ticket
from store.tickets import NewMessage, NewTicket

log = logging.getLogger("deskclone.ingest.batch")

MAX_TEXT_CHARS = 200_000
NO_SUBJECT = "(no subject)"
FLOOD_WINDOW = timedelta(hours=1)
# For an oversized email only the start is read, enough for its headers.
HEADER_SCAN_BYTES = 256 * 1024


@dataclass(frozen=True)
class Done:
    """What one email became; `skip` names why when it was skipped."""

    outcome: Outcome
    skip: SkipReason | None = None


def read_header_fields(raw: bytes) -> NormalisedEmail:
    """The header fields of an email of any size: an oversized one is read only so far."""
    return read_headers(raw[:HEADER_SCAN_BYTES] if len(raw) > MAX_EMAIL_BYTES else raw)


@dataclass(frozen=True)
class _Read:
    row: InboundMessage
    headers: NormalisedEmail
    keys: ThreadKeys
    # The whole email, parsed before the lock when the header filters let it through; for
    # the rest it is parsed only if it turns out to become or join a ticket after all.
    email: NormalisedEmail | None

    def full(self) -> NormalisedEmail:
        return self.email or normalise_email(self.row.raw)


def process_batch(
    session: Session, mailbox_id: str, ledger_ids: Sequence[str], *, flood_limit: int = 20
) -> list[Done]:
    """Writes each pending row's outcome; returns them in order. Rows already done (a retried
    activity) are left out. An email the rules cannot handle is marked failed with the error's
    name; database errors propagate, so the caller's transaction rolls back as a whole."""
    mailbox = mailboxes.get_for_worker(session, mailbox_id)
    if mailbox is None or mailbox.status == MailboxStatus.DISCONNECTED:
        return []
    rows = [
        row
        for row in ledger.rows(session, ledger_ids, outcome=Outcome.PENDING)
        if row.mailbox_id == mailbox_id
    ]
    # Parsed before the lock: parsing is most of a batch's work, and the workspace's other
    # mailboxes wait for the lock, not for this batch's parsing.
    read = [_read(mailbox, row) for row in rows]
    # Held until commit: ticket numbers, and one batch of an agent at a time. Which rows are
    # still pending is read after it: a batch that held the lock before this one (an earlier
    # attempt of the same activity) may have done some of them meanwhile.
    agent = tickets.lock_agent(session, mailbox.agent_id)
    pending = ledger.still_pending(session, [row.id for row in rows])
    read = [item for item in read if _row(item).id in pending]
    known = _Known.load(session, agent, mailbox, [r for r in read if isinstance(r, _Read)])
    done: list[Done] = []
    for item in read:
        if isinstance(item, _Read):
            try:
                done.append(_decide_and_write(session, item, known, flood_limit))
                continue
            except Exception as error:  # a bad email must not stop the mailbox
                log.exception("ledger row %s could not become a ticket", item.row.id)
                row, name = item.row, type(error).__name__
        else:
            row, name = item, "ParseError"
        ledger.mark(session, row, Outcome.FAILED, f"could not be processed: {name}")
        done.append(Done(Outcome.FAILED))
    session.flush()
    return done


def _read(mailbox: Mailbox, row: InboundMessage) -> _Read | InboundMessage:
    """The row's headers and thread keys, and its whole email unless the header filters
    already skip it; the row itself when even that fails."""
    try:
        headers = read_header_fields(row.raw)
        passes = first_skip(_candidate(mailbox, row, headers)) is None
        email = normalise_email(row.raw) if passes else None
        return _Read(row, headers, keys_of(headers, row.provider_thread_id), email)
    except Exception:  # the parsers never raise; this is for our own bugs
        log.exception("ledger row %s could not be read", row.id)
        return row


def _row(item: _Read | InboundMessage) -> InboundMessage:
    return item.row if isinstance(item, _Read) else item


def skip_by_headers(mailbox: Mailbox, row: InboundMessage) -> Skip | None:
    """The filters that need nothing but the email and the mailbox's settings."""
    return first_skip(_candidate(mailbox, row, read_header_fields(row.raw)))


def _candidate(mailbox: Mailbox, row: InboundMessage, headers: NormalisedEmail) -> Candidate:
    return Candidate(
        email=headers,
        raw=row.raw,
        size=row.size,
        mailbox_address=mailbox.address,
        allowed_senders=tuple(mailbox.allowed_senders),
    )


class _Known:
    """The batch's view of existing tickets, prefetched, then kept current as it writes."""

    def __init__(self, agent: Agent, mailbox: Mailbox) -> None:
        self.agent = agent
        self.mailbox = mailbox
        self.by_thread: dict[str, str] = {}
        self.by_message_id: dict[str, str] = {}
        self.by_number: dict[int, tuple[str, set[str]]] = {}
        self.by_source_ref: dict[str, Ticket] = {}
        self.tickets: dict[str, Ticket] = {}
        self.opened: dict[str, int] = {}

    @classmethod
    def load(
        cls, session: Session, agent: Agent, mailbox: Mailbox, batch: Sequence[_Read]
    ) -> _Known:
        known = cls(agent, mailbox)
        if not batch:
            return known
        agent_id = agent.id
        known.by_thread = ledger.tickets_for_provider_threads(
            session,
            mailbox.id,
            [p.keys.provider_thread_id for p in batch if p.keys.provider_thread_id],
        )
        message_ids = [mid for p in batch for mid in (*p.keys.reference_ids, p.keys.own_message_id)]
        known.by_message_id = ledger.tickets_for_message_ids(
            session, agent_id, [mid for mid in message_ids if mid]
        )
        known.by_number = ledger.tickets_by_number(
            session, agent_id, [n for p in batch for n in p.keys.ticket_numbers]
        )
        known.by_source_ref = tickets.find_by_source_refs(
            session, agent_id, TicketSource.EMAIL, [_source_ref(p.row) for p in batch]
        )
        wanted = {*known.by_thread.values(), *known.by_message_id.values()}
        wanted.update(ticket_id for ticket_id, _ in known.by_number.values())
        known.tickets = {t.id: t for t in tickets.get_many(session, agent_id, wanted)}
        senders = [p.headers.from_address for p in batch if p.headers.from_address]
        since = datetime.now(UTC) - FLOOD_WINDOW
        known.opened = tickets.opened_since(session, agent_id, mailbox.id, senders, since)
        return known

    def lookup(self, keys: ThreadKeys) -> ThreadLookup:
        own = keys.own_message_id
        return ThreadLookup(
            thread_ticket_id=(
                self.by_thread.get(keys.provider_thread_id) if keys.provider_thread_id else None
            ),
            ticket_by_message_id={
                mid: self.by_message_id[mid]
                for mid in keys.reference_ids
                if mid in self.by_message_id
            },
            ticket_by_number={
                n: self.by_number[n] for n in keys.ticket_numbers if n in self.by_number
            },
            own_message_ticket_id=self.by_message_id.get(own) if own else None,
        )

    def joined(self, item: _Read, ticket: Ticket, *, new: bool = False) -> None:
        """`item` is now stored on `ticket`: later emails of the batch find it there."""
        if item.keys.provider_thread_id:
            self.by_thread.setdefault(item.keys.provider_thread_id, ticket.id)
        if item.keys.own_message_id:
            self.by_message_id.setdefault(item.keys.own_message_id, ticket.id)
        self.tickets[ticket.id] = ticket
        if new:
            self.by_number[ticket.number] = (ticket.id, set())
        # Only complete participant lists are kept: a new ticket's, or one read in full.
        if ticket.number in self.by_number:
            people = self.by_number[ticket.number][1]
            for address in (ticket.requester_email, item.headers.from_address):
                if address:
                    people.add(address.lower())


def _decide_and_write(session: Session, item: _Read, known: _Known, flood_limit: int) -> Done:
    row, sender = item.row, item.headers.from_address
    verdict = decide_thread(item.headers, item.keys, known.lookup(item.keys))
    target = known.tickets.get(verdict.ticket_id) if verdict.ticket_id else None
    if verdict.outcome is ThreadOutcome.APPEND and target is None:
        verdict = ThreadVerdict(ThreadOutcome.NEW_TICKET, None, verdict.reason)
    existing = known.by_source_ref.get(_source_ref(row))
    skip = first_skip(
        replace(
            _candidate(known.mailbox, row, item.headers),
            thread=verdict,
            ticket_exists=existing is not None,
            sender_tickets_last_hour=known.opened.get(sender, 0) if sender else 0,
            flood_limit=flood_limit,
        )
    )
    if skip is not None:
        ledger.mark(session, row, Outcome.SKIPPED, skip.why, skip.ticket_id, skip.reason)
        if skip.ticket_id and item.keys.provider_thread_id:
            known.by_thread.setdefault(item.keys.provider_thread_id, skip.ticket_id)
        return Done(Outcome.SKIPPED, skip.reason)
    if verdict.outcome is ThreadOutcome.APPEND and target is not None:
        email = item.full()
        message = _message(row, email, trim_quoted_reply(email.text))
        tickets.add_messages(
            session, target, [message], record_events=True, locked_agent=known.agent
        )
        ledger.mark(session, row, Outcome.APPENDED, verdict.reason, target.id)
        known.joined(item, target)
        return Done(Outcome.APPENDED)
    if existing is not None:
        # Made from this very email before (its ledger row was lost with a disconnect).
        ledger.mark(session, row, Outcome.TICKET_CREATED, verdict.reason, existing.id)
        known.joined(item, existing)
        return Done(Outcome.TICKET_CREATED)
    email = item.full()
    ticket = tickets.add_ticket(
        session,
        known.agent,
        NewTicket(
            agent_id=row.agent_id,
            source=TicketSource.EMAIL,
            source_ref=_source_ref(row),
            title=(email.subject.strip() or NO_SUBJECT)[:500],
            description=email.text[:MAX_TEXT_CHARS],
            requester_email=sender,
            requester_name=email.from_name,
            mailbox_id=known.mailbox.id,
            messages=[_message(row, email, email.text)],
        ),
    )
    ledger.mark(session, row, Outcome.TICKET_CREATED, verdict.reason, ticket.id)
    if sender:
        known.opened[sender] = known.opened.get(sender, 0) + 1
    known.joined(item, ticket, new=True)
    return Done(Outcome.TICKET_CREATED)


def _source_ref(row: InboundMessage) -> str:
    return f"{row.mailbox_id}:{row.provider_message_id}"[:255]


def _message(row: InboundMessage, email: NormalisedEmail, text: str) -> NewMessage:
    sent_at = email.date or row.received_at or datetime.now(UTC)
    return NewMessage(
        source_ref=_source_ref(row),
        body_text=text[:MAX_TEXT_CHARS],
        sent_at=sent_at,
        author_email=email.from_address,
        author_name=email.from_name,
        author_role="requester",
        attachments=[
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in email.attachments
        ],
    )

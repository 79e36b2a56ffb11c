"""Ledger rows → new tickets or messages on the tickets they answer, a batch per transaction.

A batch reads what it needs in a handful of queries (its pending rows; the tickets that its
provider threads, Message-IDs and subject numbers point at; its senders' recent ticket
counts), decides each email in order with the pure rules of domain/, and writes it all in
one flush. Emails of one batch see each other exactly as they would one at a time: a reply
to an email earlier in the batch joins the ticket that email made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from domain.flood import check_flood
from domain.mime import NormalisedEmail, normalise_email
from domain.quotes import trim_quoted_reply
from domain.thread_decision import ThreadKeys, ThreadLookup, ThreadOutcome, decide_thread
from domain.thread_decision import thread_keys as keys_of
from store import ledger, tickets
from store.models import Agent, InboundMessage, Mailbox, Ticket
from store.tickets import NewMessage, NewTicket

log = logging.getLogger("deskclone.activities.mail_tickets")

MAX_TEXT_CHARS = 200_000
NO_SUBJECT = "(no subject)"
FLOOD_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Parsed:
    row: InboundMessage
    email: NormalisedEmail
    keys: ThreadKeys


def process_batch(
    session: Session, mailbox_id: str, ledger_ids: Sequence[str], *, flood_limit: int = 20
) -> list[str]:
    """Writes each pending row's outcome; returns them in order. Rows already done (a retried
    activity) are left out. An email the rules cannot handle is marked failed with the error's
    name; database errors propagate, so the caller's transaction rolls back as a whole."""
    agent_id = session.exec(select(Mailbox.agent_id).where(Mailbox.id == mailbox_id)).first()
    if agent_id is None:
        return []
    # Held until commit: ticket numbers, and one batch of an agent at a time. Rows are read
    # after it, so a batch that waited here sees what the one before it wrote.
    agent = tickets.lock_agent(session, agent_id)
    rows = [
        row
        for row in ledger.rows(session, ledger_ids, outcome="pending")
        if row.mailbox_id == mailbox_id
    ]
    parsed: list[Parsed | InboundMessage] = []
    for row in rows:
        try:
            email = normalise_email(row.raw)
            parsed.append(Parsed(row, email, keys_of(email, row.provider_thread_id)))
        except Exception:  # normalise_email never raises; this is for our own bugs
            log.exception("ledger row %s could not be read", row.id)
            parsed.append(row)
    known = _Known.load(session, agent, mailbox_id, [p for p in parsed if isinstance(p, Parsed)])
    outcomes: list[str] = []
    for item in parsed:
        if isinstance(item, Parsed):
            try:
                outcomes.append(_write(session, item, known, flood_limit))
                continue
            except Exception as error:  # a bad email must not stop the mailbox
                log.exception("ledger row %s could not become a ticket", item.row.id)
                row, name = item.row, type(error).__name__
        else:
            row, name = item, "ParseError"
        ledger.mark(session, row, "failed", f"could not be processed: {name}")
        outcomes.append("failed")
    session.flush()
    return outcomes


class _Known:
    """The batch's view of existing tickets, prefetched, then kept current as it writes."""

    def __init__(self, agent: Agent, mailbox_id: str) -> None:
        self.agent = agent
        self.mailbox_id = mailbox_id
        self.by_thread: dict[str, str] = {}
        self.by_message_id: dict[str, str] = {}
        self.by_number: dict[int, tuple[str, set[str]]] = {}
        self.by_source_ref: dict[str, Ticket] = {}
        self.tickets: dict[str, Ticket] = {}
        self.opened: dict[str, int] = {}

    @classmethod
    def load(
        cls, session: Session, agent: Agent, mailbox_id: str, batch: Sequence[Parsed]
    ) -> _Known:
        known = cls(agent, mailbox_id)
        if not batch:
            return known
        agent_id = agent.id
        known.by_thread = ledger.tickets_for_provider_threads(
            session,
            mailbox_id,
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
            session, agent_id, "email", [_source_ref(p.row) for p in batch]
        )
        wanted = {*known.by_thread.values(), *known.by_message_id.values()}
        wanted.update(ticket_id for ticket_id, _ in known.by_number.values())
        known.tickets = {t.id: t for t in tickets.get_many(session, agent_id, wanted)}
        senders = [p.email.from_address for p in batch if p.email.from_address]
        since = datetime.now(UTC) - FLOOD_WINDOW
        known.opened = tickets.opened_since(session, agent_id, mailbox_id, senders, since)
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

    def joined(self, item: Parsed, ticket: Ticket, *, new: bool = False) -> None:
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
            for address in (ticket.requester_email, item.email.from_address):
                if address:
                    people.add(address.lower())


def _write(session: Session, item: Parsed, known: _Known, flood_limit: int) -> str:
    row, email = item.row, item.email
    verdict = decide_thread(email, item.keys, known.lookup(item.keys))
    if verdict.outcome is ThreadOutcome.DUPLICATE:
        ledger.mark(session, row, "skipped", verdict.reason, verdict.ticket_id)
        if verdict.ticket_id and item.keys.provider_thread_id:
            known.by_thread.setdefault(item.keys.provider_thread_id, verdict.ticket_id)
        return "skipped"
    target = known.tickets.get(verdict.ticket_id) if verdict.ticket_id else None
    if verdict.outcome is ThreadOutcome.APPEND and target is not None:
        message = _message(row, email, trim_quoted_reply(email.text))
        tickets.add_messages(session, target, [message], record_events=True)
        ledger.mark(session, row, "appended", verdict.reason, target.id)
        known.joined(item, target)
        return "appended"
    existing = known.by_source_ref.get(_source_ref(row))
    if existing is not None:
        # Made from this very email before (its ledger row was lost with a disconnect).
        ledger.mark(session, row, "ticket_created", verdict.reason, existing.id)
        known.joined(item, existing)
        return "ticket_created"
    sender = email.from_address
    flood = check_flood(sender, known.opened.get(sender, 0) if sender else 0, flood_limit)
    if not flood.allowed:
        ledger.mark(session, row, "skipped", flood.reason)
        return "skipped"
    text = email.text
    ticket = tickets.add_ticket(
        session,
        known.agent,
        NewTicket(
            agent_id=row.agent_id,
            source="email",
            source_ref=_source_ref(row),
            title=(email.subject.strip() or NO_SUBJECT)[:500],
            description=text[:MAX_TEXT_CHARS],
            requester_email=sender,
            requester_name=email.from_name,
            mailbox_id=known.mailbox_id,
            messages=[_message(row, email, text)],
        ),
    )
    ledger.mark(session, row, "ticket_created", verdict.reason, ticket.id)
    if sender:
        known.opened[sender] = known.opened.get(sender, 0) + 1
    known.joined(item, ticket, new=True)
    return "ticket_created"


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

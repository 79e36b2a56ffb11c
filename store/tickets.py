"""Ticket queries. Each function takes a session inside a transaction and never commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from domain import events as shapes
from domain.events import EventType
from domain.outcomes import TicketSource, TicketStatus
from store import agents, events
from store.models import Agent, Ticket, TicketMessage, utcnow


@dataclass(frozen=True)
class NewMessage:
    source_ref: str
    body_text: str
    sent_at: datetime
    author_email: str | None = None
    author_name: str | None = None
    author_role: str = "requester"
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class NewTicket:
    agent_id: str
    source: TicketSource
    source_ref: str
    title: str
    description: str
    requester_email: str | None
    requester_name: str | None
    messages: Sequence[NewMessage]
    mailbox_id: str | None = None


@dataclass(frozen=True)
class CreatedTicket:
    ticket: Ticket
    created: bool


def create_ticket(session: Session, new: NewTicket) -> CreatedTicket:
    """Create a ticket, or return the one already made from the same source reference.

    The agent row is locked first, so concurrent creations for one agent queue here: the
    second one then sees the first's ticket (same reference) or takes the next number.
    Numbers are handed out only when a ticket is really inserted, so they have no gaps.
    """
    agent = lock_agent(session, new.agent_id)
    existing = find_by_source_ref(session, new.agent_id, new.source, new.source_ref)
    if existing is not None:
        return CreatedTicket(existing, created=False)
    ticket = add_ticket(session, agent, new)
    session.flush()
    return CreatedTicket(ticket, created=True)


def lock_agent(session: Session, agent_id: str) -> Agent:
    """The agent row, locked until the transaction ends: ticket numbers are handed out under it."""
    return agents.lock(session, agent_id)


def add_ticket(session: Session, agent: Agent, new: NewTicket) -> Ticket:
    """Add a ticket with the agent's next number, its messages and its event, unflushed.
    The caller holds `lock_agent` and has checked that the source reference is new."""
    now = utcnow()
    ticket = Ticket(
        agent_id=new.agent_id,
        number=agent.next_ticket_number,
        source=new.source,
        source_ref=new.source_ref,
        title=new.title,
        description=new.description,
        requester_email=new.requester_email,
        requester_name=new.requester_name,
        mailbox_id=new.mailbox_id,
        created_at=now,
        updated_at=now,
    )
    agent.next_ticket_number += 1
    session.add(agent)
    session.add(ticket)
    add_messages(session, ticket, _unique(new.messages), record_events=False)
    facts = events.ticket_facts(session, ticket)
    events.record_locked(session, agent, EventType.TICKET_CREATED, shapes.ticket_data(facts))
    return ticket


def append_messages(session: Session, ticket: Ticket, messages: Sequence[NewMessage]) -> int:
    """Add the messages the ticket does not hold yet (by source reference); returns how many."""
    refs = [m.source_ref for m in messages]
    known = set(
        session.exec(
            select(TicketMessage.source_ref).where(
                TicketMessage.ticket_id == ticket.id, col(TicketMessage.source_ref).in_(refs)
            )
        ).all()
    )
    fresh = _unique([m for m in messages if m.source_ref not in known])
    add_messages(session, ticket, fresh, record_events=True)
    session.flush()
    return len(fresh)


def _unique(messages: Sequence[NewMessage]) -> list[NewMessage]:
    """The first message of each source reference: a ticket holds a message once."""
    first: dict[str, NewMessage] = {}
    for message in messages:
        first.setdefault(message.source_ref, message)
    return list(first.values())


def add_messages(
    session: Session,
    ticket: Ticket,
    messages: Sequence[NewMessage],
    *,
    record_events: bool,
    locked_agent: Agent | None = None,
) -> None:
    """Add messages to a ticket, unflushed; the caller knows the ticket does not hold them.
    With `record_events`, the caller holds the agent's lock (`lock_agent`); one that has the
    locked row at hand passes it, which spares a query (and the flush a query sets off)."""
    rows: list[TicketMessage] = []
    for message in messages:
        row = TicketMessage(
            agent_id=ticket.agent_id,
            ticket_id=ticket.id,
            source_ref=message.source_ref,
            author_email=message.author_email,
            author_name=message.author_name,
            author_role=message.author_role,
            body_text=message.body_text,
            attachments=message.attachments,
            sent_at=message.sent_at,
        )
        session.add(row)
        rows.append(row)
    if messages:
        ticket.message_count += len(messages)
        ticket.updated_at = utcnow()
        session.add(ticket)
    if record_events and rows:
        agent = locked_agent or agents.lock(session, ticket.agent_id)  # held already
        facts = events.ticket_facts(session, ticket)
        for row in rows:
            data = shapes.message_added_data(facts, events.message_facts(row))
            events.record_locked(session, agent, EventType.TICKET_MESSAGE_ADDED, data)


def find_by_source_ref(session: Session, agent_id: str, source: str, ref: str) -> Ticket | None:
    return session.exec(
        select(Ticket).where(
            Ticket.agent_id == agent_id, Ticket.source == source, Ticket.source_ref == ref
        )
    ).first()


def find_by_source_refs(
    session: Session, agent_id: str, source: str, refs: Iterable[str]
) -> dict[str, Ticket]:
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return {}
    found = session.exec(
        select(Ticket).where(
            Ticket.agent_id == agent_id, Ticket.source == source, col(Ticket.source_ref).in_(wanted)
        )
    ).all()
    return {ticket.source_ref: ticket for ticket in found}


def get_many(session: Session, agent_id: str, ticket_ids: Iterable[str]) -> Sequence[Ticket]:
    wanted = list(dict.fromkeys(ticket_ids))
    if not wanted:
        return []
    return session.exec(
        select(Ticket).where(Ticket.agent_id == agent_id, col(Ticket.id).in_(wanted))
    ).all()


def get(session: Session, agent_id: str, ticket_id: str) -> Ticket | None:
    return session.exec(
        select(Ticket).where(Ticket.agent_id == agent_id, Ticket.id == ticket_id)
    ).first()


def messages_of(session: Session, ticket: Ticket) -> Sequence[TicketMessage]:
    return session.exec(
        select(TicketMessage)
        .where(TicketMessage.agent_id == ticket.agent_id, TicketMessage.ticket_id == ticket.id)
        .order_by(col(TicketMessage.sent_at), col(TicketMessage.created_at))
    ).all()


@dataclass(frozen=True)
class TicketFilter:
    source: str | None = None
    status: str | None = None
    text: str | None = None


def list_page(
    session: Session,
    agent_id: str,
    filters: TicketFilter,
    *,
    limit: int,
    before_number: int | None = None,
) -> Sequence[Ticket]:
    """Newest first by ticket number; keyset pagination with `before_number`."""
    query = select(Ticket).where(Ticket.agent_id == agent_id)
    if filters.source:
        query = query.where(Ticket.source == filters.source)
    if filters.status:
        query = query.where(Ticket.status == filters.status)
    if filters.text:
        pattern = "%" + _escape_like(filters.text.lower()) + "%"
        in_messages = (
            select(TicketMessage.id)
            .where(
                TicketMessage.ticket_id == Ticket.id,
                sa.func.lower(TicketMessage.body_text).like(pattern, escape="\\"),
            )
            .exists()
        )
        query = query.where(
            sa.or_(
                sa.func.lower(Ticket.title).like(pattern, escape="\\"),
                sa.func.lower(Ticket.description).like(pattern, escape="\\"),
                in_messages,
            )
        )
    if before_number is not None:
        query = query.where(Ticket.number < before_number)
    return session.exec(query.order_by(col(Ticket.number).desc()).limit(limit)).all()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def set_status(session: Session, ticket: Ticket, status: TicketStatus) -> Ticket:
    if ticket.status != status:
        # Locked before the ticket row changes: ticket batches lock in that order too. Then
        # read again: the event reports the ticket as it is once no one else can change it.
        agent = agents.lock(session, ticket.agent_id)
        session.refresh(ticket)
        if ticket.status == status:
            return ticket
        previous = ticket.status
        ticket.status = status
        ticket.updated_at = utcnow()
        session.add(ticket)
        data = shapes.status_changed_data(events.ticket_facts(session, ticket), previous)
        events.record_locked(session, agent, EventType.TICKET_STATUS_CHANGED, data)
        session.flush()
    return ticket


def opened_since(
    session: Session, agent_id: str, mailbox_id: str, requesters: Iterable[str], since: datetime
) -> dict[str, int]:
    """How many tickets each of `requesters` opened through this mailbox since `since` (for
    the flood guard); requesters with none are left out."""
    wanted = list(dict.fromkeys(requesters))
    if not wanted:
        return {}
    counted = session.exec(
        select(Ticket.requester_email, sa.func.count())
        .where(
            Ticket.agent_id == agent_id,
            Ticket.mailbox_id == mailbox_id,
            col(Ticket.requester_email).in_(wanted),
            Ticket.created_at >= since,
        )
        .group_by(col(Ticket.requester_email))
    ).all()
    return {requester: count for requester, count in counted if requester is not None}

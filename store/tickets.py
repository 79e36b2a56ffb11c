"""Ticket queries. Each function takes a session inside a transaction and never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from store.models import Agent, Ticket, TicketEvent, TicketMessage, utcnow


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
    source: str
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
    agent = session.exec(select(Agent).where(Agent.id == new.agent_id).with_for_update()).one()
    existing = find_by_source_ref(session, new.agent_id, new.source, new.source_ref)
    if existing is not None:
        return CreatedTicket(existing, created=False)

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
    session.flush()
    session.add(TicketEvent(agent_id=new.agent_id, ticket_id=ticket.id, kind="ticket_created"))
    _insert_messages(session, ticket, new.messages, record_events=False)
    return CreatedTicket(ticket, created=True)


def append_messages(session: Session, ticket: Ticket, messages: Sequence[NewMessage]) -> int:
    """Add the messages the ticket does not hold yet (by source reference); returns how many."""
    return _insert_messages(session, ticket, messages, record_events=True)


def _insert_messages(
    session: Session, ticket: Ticket, messages: Sequence[NewMessage], *, record_events: bool
) -> int:
    refs = [m.source_ref for m in messages]
    known = set(
        session.exec(
            select(TicketMessage.source_ref).where(
                TicketMessage.ticket_id == ticket.id, col(TicketMessage.source_ref).in_(refs)
            )
        ).all()
    )
    added = 0
    for message in messages:
        if message.source_ref in known:
            continue
        known.add(message.source_ref)
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
        session.flush()
        if record_events:
            session.add(
                TicketEvent(
                    agent_id=ticket.agent_id,
                    ticket_id=ticket.id,
                    message_id=row.id,
                    kind="message_added",
                )
            )
        added += 1
    if added:
        ticket.message_count += added
        ticket.updated_at = utcnow()
        session.add(ticket)
        session.flush()
    return added


def find_by_source_ref(session: Session, agent_id: str, source: str, ref: str) -> Ticket | None:
    return session.exec(
        select(Ticket).where(
            Ticket.agent_id == agent_id, Ticket.source == source, Ticket.source_ref == ref
        )
    ).first()


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


def set_status(session: Session, ticket: Ticket, status: str) -> Ticket:
    if ticket.status != status:
        ticket.status = status
        ticket.updated_at = utcnow()
        session.add(ticket)
        session.add(
            TicketEvent(agent_id=ticket.agent_id, ticket_id=ticket.id, kind="status_changed")
        )
        session.flush()
    return ticket


def opened_since(
    session: Session, agent_id: str, mailbox_id: str, requester: str | None, since: datetime
) -> int:
    """Tickets `requester` opened through this mailbox since `since` (for the flood guard)."""
    if requester is None:
        return 0
    return session.exec(
        select(sa.func.count())
        .select_from(Ticket)
        .where(
            Ticket.agent_id == agent_id,
            Ticket.mailbox_id == mailbox_id,
            Ticket.requester_email == requester,
            Ticket.created_at >= since,
        )
    ).one()

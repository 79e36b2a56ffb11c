"""The event outbox: writing an event in the transaction of its change, and reading a
workspace's events in order from a place in it.

Order. Each event takes the workspace's next number (`Agent.next_event_seq`) under the
workspace's row lock, held until commit. A transaction that numbers an event therefore waits
for every earlier one of its workspace to commit or roll back (a rolled-back number is handed
out again), so events become visible in the order of their numbers, with no gaps: a reader that
has seen up to n and asks for what is after n misses nothing and sees nothing twice. An
autoincrement id would not do on PostgreSQL: a transaction that commits later may hold a
smaller id than one a reader has already passed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from sqlmodel import Session, col, select

from domain import events as shapes
from domain.events import EventType, MailboxFacts, MessageFacts, TicketFacts
from store import agents
from store.models import Agent, Event, Mailbox, Ticket, TicketMessage, utcnow
from store.notify import notify_at_commit


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def record(session: Session, agent_id: str, event_type: EventType, data: dict[str, Any]) -> Event:
    """Add an event to the transaction, numbered under the workspace's lock (taken here if
    the transaction does not hold it yet). Callers take the lock (`agents.lock`) before
    changing the rows the event reports: the same order everywhere, so no two writers wait on
    each other in a circle."""
    return record_locked(session, agents.lock(session, agent_id), event_type, data)


# The PostgreSQL NOTIFY channel an event's commit rings (the worker's outbox waker listens).
EVENTS_CHANNEL = "deskclone_events"


def record_locked(
    session: Session, agent: Agent, event_type: EventType, data: dict[str, Any]
) -> Event:
    """As `record`, for a caller that holds the agent row locked (`agents.lock`)."""
    event = Event(
        id=new_event_id(),
        agent_id=agent.id,
        seq=agent.next_event_seq,
        type=event_type,
        data=data,
        created_at=utcnow(),
    )
    agent.next_event_seq += 1
    session.add(agent)
    session.add(event)
    notify_at_commit(session, EVENTS_CHANNEL, agent.id)
    return event


def ticket_facts(session: Session, ticket: Ticket) -> TicketFacts:
    mailbox = session.get(Mailbox, ticket.mailbox_id) if ticket.mailbox_id else None
    return TicketFacts(
        id=ticket.id,
        number=ticket.number,
        title=ticket.title,
        description=ticket.description,
        source=ticket.source,
        status=ticket.status,
        requester_email=ticket.requester_email,
        requester_name=ticket.requester_name,
        mailbox_id=ticket.mailbox_id,
        mailbox_address=mailbox.address if mailbox is not None else None,
        message_count=ticket.message_count,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
    )


def message_facts(message: TicketMessage) -> MessageFacts:
    return MessageFacts(
        id=message.id,
        author_email=message.author_email,
        author_name=message.author_name,
        role=message.author_role,
        body_text=message.body_text,
        sent_at=message.sent_at,
        attachments=list(message.attachments),
    )


def mailbox_facts(mailbox: Mailbox) -> MailboxFacts:
    return MailboxFacts(
        id=mailbox.id,
        provider=mailbox.provider,
        address=mailbox.address,
        status=mailbox.status,
        last_error=mailbox.last_error,
    )


def envelope(event: Event) -> dict[str, Any]:
    return shapes.envelope(event.id, event.type, event.created_at, event.data)


def after(
    session: Session,
    agent_id: str,
    seq: int,
    *,
    limit: int,
    types: Iterable[str] | None = None,
) -> Sequence[Event]:
    """The workspace's events numbered above `seq`, oldest first."""
    query = select(Event).where(Event.agent_id == agent_id, Event.seq > seq)
    if types:
        query = query.where(col(Event.type).in_(list(types)))
    return session.exec(query.order_by(col(Event.seq)).limit(limit)).all()


def head(session: Session, agent_id: str) -> int:
    """The number of the workspace's newest committed event (0: none yet)."""
    next_seq = session.exec(select(Agent.next_event_seq).where(Agent.id == agent_id)).first()
    return (next_seq or 1) - 1


def heads(session: Session, agent_ids: Iterable[str]) -> dict[str, int]:
    wanted = list(dict.fromkeys(agent_ids))
    if not wanted:
        return {}
    rows = session.exec(
        select(Agent.id, Agent.next_event_seq).where(col(Agent.id).in_(wanted))
    ).all()
    return {agent_id: next_seq - 1 for agent_id, next_seq in rows}


def seq_of(session: Session, agent_id: str, event_id: str) -> int | None:
    """Where an event of this workspace stands in its order; None for another's or none."""
    return session.exec(
        select(Event.seq).where(Event.agent_id == agent_id, Event.id == event_id)
    ).first()

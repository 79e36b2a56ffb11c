"""Reads the pages need beyond `store/`: each takes a session and is scoped by agent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from domain.outcomes import Outcome
from store import mailboxes, tickets
from store.models import InboundMessage, Mailbox, Ticket, TicketMessage

LEDGER_OUTCOMES = tuple(Outcome)


@dataclass(frozen=True)
class MailboxRow:
    mailbox: Mailbox
    counts: dict[Outcome, int]


def mailbox_rows(session: Session, agent_id: str) -> list[MailboxRow]:
    rows = mailboxes.list_for_agent(session, agent_id)
    counts = mailboxes.counts(session, [m.id for m in rows])
    return [MailboxRow(m, counts[m.id]) for m in rows]


def ticket_numbers(session: Session, agent_id: str, ticket_ids: Iterable[str]) -> dict[str, int]:
    wanted = list({i for i in ticket_ids if i})
    if not wanted:
        return {}
    found = session.exec(
        select(Ticket.id, Ticket.number).where(
            Ticket.agent_id == agent_id, col(Ticket.id).in_(wanted)
        )
    ).all()
    return dict(found)


def mailbox_addresses(session: Session, agent_id: str, ids: Iterable[str | None]) -> dict[str, str]:
    """Every mailbox named, disconnected ones too: their tickets stay in the queue."""
    wanted = list({i for i in ids if i})
    if not wanted:
        return {}
    found = session.exec(
        select(Mailbox.id, Mailbox.address).where(
            Mailbox.agent_id == agent_id, col(Mailbox.id).in_(wanted)
        )
    ).all()
    return dict(found)


@dataclass(frozen=True)
class LedgerPage:
    rows: Sequence[InboundMessage]
    ticket_numbers: dict[str, int]
    older_than: str | None  # the id to page on from, when older rows exist


def ledger_page(
    session: Session,
    agent_id: str,
    mailbox_id: str,
    *,
    outcome: str | None,
    limit: int,
    before_id: str | None,
) -> LedgerPage:
    """Newest first, keyset-paged on (created_at, id) from the row `before_id`."""
    query = select(InboundMessage).where(
        InboundMessage.agent_id == agent_id, InboundMessage.mailbox_id == mailbox_id
    )
    if outcome is not None:
        query = query.where(InboundMessage.outcome == outcome)
    if before_id is not None:
        anchor = session.exec(
            select(InboundMessage.created_at).where(
                InboundMessage.mailbox_id == mailbox_id, InboundMessage.id == before_id
            )
        ).first()
        if anchor is not None:
            query = query.where(
                (col(InboundMessage.created_at) < anchor)
                | (
                    (col(InboundMessage.created_at) == anchor)
                    & (col(InboundMessage.id) < before_id)
                )
            )
    query = query.options(defer(InboundMessage.raw))  # type: ignore[arg-type]
    found = session.exec(
        query.order_by(col(InboundMessage.created_at).desc(), col(InboundMessage.id).desc()).limit(
            limit + 1
        )
    ).all()
    page = found[:limit]
    numbers = ticket_numbers(session, agent_id, (r.ticket_id for r in page if r.ticket_id))
    return LedgerPage(page, numbers, page[-1].id if len(found) > limit else None)


@dataclass(frozen=True)
class TicketThread:
    ticket: Ticket
    messages: Sequence[TicketMessage]
    mailbox_address: str | None


def ticket_thread(session: Session, agent_id: str, ticket_id: str) -> TicketThread | None:
    ticket = tickets.get(session, agent_id, ticket_id)
    if ticket is None:
        return None
    address = None
    if ticket.mailbox_id:
        address = mailbox_addresses(session, agent_id, [ticket.mailbox_id]).get(ticket.mailbox_id)
    return TicketThread(ticket, tickets.messages_of(session, ticket), address)

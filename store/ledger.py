"""The inbound ledger: what each fetched email became, and why; and the thread lookups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from domain.outcomes import Outcome, SkipReason
from store.models import InboundMessage, Ticket, TicketMessage, new_id, utcnow


@dataclass(frozen=True)
class NewInbound:
    provider_message_id: str
    provider_thread_id: str | None
    internet_message_id: str | None
    from_address: str | None
    from_name: str | None
    subject: str
    received_at: datetime | None
    raw: bytes
    size: int | None = None  # the whole message's, when `raw` is only its header


def insert_new(
    session: Session, *, agent_id: str, mailbox_id: str, rows: Sequence[NewInbound]
) -> list[str]:
    """Insert the rows the ledger does not hold yet; returns the ids of every row given, in
    order, whether inserted now or by an earlier attempt of the same activity."""
    if not rows:
        return []
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    values = [
        {
            "id": new_id(),
            "agent_id": agent_id,
            "mailbox_id": mailbox_id,
            "provider_message_id": r.provider_message_id,
            "provider_thread_id": r.provider_thread_id,
            "internet_message_id": (r.internet_message_id or None) and r.internet_message_id[:998],
            "from_address": r.from_address and r.from_address[:320],
            "from_name": r.from_name and r.from_name[:200],
            "subject": r.subject[:998],
            "received_at": r.received_at,
            "size": len(r.raw) if r.size is None else r.size,
            "raw": r.raw,
            "outcome": Outcome.PENDING,
            "created_at": now,
        }
        for r in rows
    ]
    # Core, with the rows as parameters: the statement is compiled once per process, not
    # once per page with a bind parameter for every column of every row (bench.ingest).
    statement = insert(InboundMessage.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
        index_elements=["mailbox_id", "provider_message_id"]
    )
    session.connection().execute(statement, values)
    found = dict(
        session.exec(
            select(InboundMessage.provider_message_id, InboundMessage.id).where(
                InboundMessage.mailbox_id == mailbox_id,
                col(InboundMessage.provider_message_id).in_([r.provider_message_id for r in rows]),
            )
        ).all()
    )
    return [found[r.provider_message_id] for r in rows]


def rows(
    session: Session, ids: Sequence[str], *, outcome: Outcome | None = None
) -> list[InboundMessage]:
    """Rows by id in the order given (optionally only those with `outcome`)."""
    if not ids:
        return []
    query = select(InboundMessage).where(col(InboundMessage.id).in_(ids))
    if outcome is not None:
        query = query.where(InboundMessage.outcome == outcome)
    by_id = {row.id: row for row in session.exec(query).all()}
    return [by_id[i] for i in ids if i in by_id]


def still_pending(session: Session, ids: Sequence[str]) -> set[str]:
    """Which of `ids` have no outcome yet, read now (rows loaded earlier may be stale)."""
    if not ids:
        return set()
    query = select(InboundMessage.id).where(
        col(InboundMessage.id).in_(ids), InboundMessage.outcome == Outcome.PENDING
    )
    return set(session.exec(query).all())


def pending_ids(session: Session, mailbox_id: str, limit: int) -> list[str]:
    return list(
        session.exec(
            select(InboundMessage.id)
            .where(
                InboundMessage.mailbox_id == mailbox_id, InboundMessage.outcome == Outcome.PENDING
            )
            .order_by(col(InboundMessage.created_at))
            .limit(limit)
        ).all()
    )


def mark(
    session: Session,
    row: InboundMessage,
    outcome: Outcome,
    reason: str | None = None,
    ticket_id: str | None = None,
    skip_reason: SkipReason | None = None,
) -> None:
    row.outcome = outcome
    row.reason = reason
    row.skip_reason = skip_reason
    row.ticket_id = ticket_id
    row.processed_at = utcnow()
    session.add(row)


def page(
    session: Session,
    agent_id: str,
    mailbox_id: str,
    *,
    limit: int,
    after: tuple[datetime, str] | None = None,
) -> Sequence[InboundMessage]:
    """Newest first, keyset-paged on (created_at, id): one page of mail shares a created_at."""
    query = select(InboundMessage).where(
        InboundMessage.agent_id == agent_id, InboundMessage.mailbox_id == mailbox_id
    )
    if after is not None:
        stamp, row_id = after
        query = query.where(
            sa.or_(
                col(InboundMessage.created_at) < stamp,
                sa.and_(col(InboundMessage.created_at) == stamp, col(InboundMessage.id) < row_id),
            )
        )
    query = query.options(defer(InboundMessage.raw))  # type: ignore[arg-type]
    return session.exec(
        query.order_by(col(InboundMessage.created_at).desc(), col(InboundMessage.id).desc()).limit(
            limit
        )
    ).all()


# Thread lookups: prefetched for the pure thread decision in domain/.


def tickets_for_provider_threads(
    session: Session, mailbox_id: str, thread_ids: Iterable[str]
) -> dict[str, str]:
    """Provider thread id → the ticket of the thread's earliest email that made or joined one."""
    wanted = list(dict.fromkeys(thread_ids))
    if not wanted:
        return {}
    first_seen = sa.func.min(InboundMessage.created_at)
    found: dict[str, str] = {}
    for thread_id, ticket_id, _first in session.exec(
        select(InboundMessage.provider_thread_id, InboundMessage.ticket_id, first_seen)
        .where(
            InboundMessage.mailbox_id == mailbox_id,
            col(InboundMessage.provider_thread_id).in_(wanted),
            col(InboundMessage.ticket_id).is_not(None),
        )
        .group_by(col(InboundMessage.provider_thread_id), col(InboundMessage.ticket_id))
        .order_by(first_seen)
    ).all():
        if thread_id is not None and ticket_id is not None:
            found.setdefault(thread_id, ticket_id)
    return found


def tickets_for_message_ids(
    session: Session, agent_id: str, message_ids: Iterable[str]
) -> dict[str, str]:
    """Message-ID → ticket id for every known message among `message_ids` in this agent."""
    wanted = list(dict.fromkeys(message_ids))
    if not wanted:
        return {}
    query = select(InboundMessage.internet_message_id, InboundMessage.ticket_id).where(
        InboundMessage.agent_id == agent_id,
        col(InboundMessage.internet_message_id).in_(wanted),
        col(InboundMessage.ticket_id).is_not(None),
    )
    found: dict[str, str] = {}
    for message_id, ticket_id in session.exec(query).all():
        if message_id is not None and ticket_id is not None:
            found.setdefault(message_id, ticket_id)
    return found


def tickets_by_number(
    session: Session, agent_id: str, numbers: Iterable[int]
) -> dict[int, tuple[str, set[str]]]:
    """Ticket number → (ticket id, addresses taking part: requester and message authors)."""
    wanted = list(dict.fromkeys(numbers))
    if not wanted:
        return {}
    found: dict[int, tuple[str, set[str]]] = {}
    for ticket in session.exec(
        select(Ticket).where(Ticket.agent_id == agent_id, col(Ticket.number).in_(wanted))
    ).all():
        authors = session.exec(
            select(TicketMessage.author_email).where(
                TicketMessage.ticket_id == ticket.id, col(TicketMessage.author_email).is_not(None)
            )
        ).all()
        people = {a.lower() for a in authors if a}
        if ticket.requester_email:
            people.add(ticket.requester_email.lower())
        found[ticket.number] = (ticket.id, people)
    return found

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.outcomes import TicketSource, TicketStatus
from store import tickets
from store.db import transaction
from store.models import Agent, Event
from store.tickets import NewMessage, NewTicket, TicketFilter
from tests.conftest import make_agent

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def new_ticket(
    agent: Agent, ref: str, *, title: str = "Printer", body: str = "It jams"
) -> NewTicket:
    return NewTicket(
        agent_id=agent.id,
        source=TicketSource.FORM,
        source_ref=ref,
        title=title,
        description=body,
        requester_email="ann@example.com",
        requester_name="Ann",
        messages=[NewMessage(source_ref=f"{ref}#0", body_text=body, sent_at=T0)],
    )


def create(engine: Engine, new: NewTicket) -> tickets.CreatedTicket:
    with transaction(engine) as session:
        return tickets.create_ticket(session, new)


def event_types(session: Session, agent: Agent) -> list[str]:
    """The workspace's events in their order (each test has a workspace of its own)."""
    found = session.exec(select(Event).where(Event.agent_id == agent.id).order_by(col(Event.seq)))
    return [event.type for event in found]


def test_create_ticket_numbers_from_one_per_agent(engine: Engine) -> None:
    first, _ = make_agent(engine)
    second, _ = make_agent(engine)
    numbers = [create(engine, new_ticket(first, f"r{i}")).ticket.number for i in range(3)]
    other = create(engine, new_ticket(second, "r0")).ticket.number
    assert numbers == [1, 2, 3]
    assert other == 1


def test_create_ticket_is_idempotent_on_source_ref(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    made = create(engine, new_ticket(agent, "same"))
    again = create(engine, new_ticket(agent, "same"))
    assert made.created and not again.created
    assert again.ticket.id == made.ticket.id
    with transaction(engine) as session:
        assert event_types(session, agent) == ["ticket.created"]
        assert len(tickets.messages_of(session, made.ticket)) == 1
    # The number was not spent by the duplicate.
    assert create(engine, new_ticket(agent, "next")).ticket.number == 2


def test_append_messages_adds_only_new_ones_and_records_events(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    made = create(engine, new_ticket(agent, "conv"))
    later = [
        NewMessage(source_ref="conv#0", body_text="It jams", sent_at=T0),
        NewMessage(source_ref="conv#1", body_text="Still jams", sent_at=T0 + timedelta(minutes=5)),
    ]
    with transaction(engine) as session:
        ticket = tickets.get(session, agent.id, made.ticket.id)
        assert ticket is not None
        assert tickets.append_messages(session, ticket, later) == 1
        assert tickets.append_messages(session, ticket, later) == 0
    with transaction(engine) as session:
        ticket = tickets.get(session, agent.id, made.ticket.id)
        assert ticket is not None
        assert ticket.message_count == 2
        bodies = [m.body_text for m in tickets.messages_of(session, ticket)]
        kinds = event_types(session, agent)
    assert bodies == ["It jams", "Still jams"]
    assert kinds == ["ticket.created", "ticket.message_added"]


def test_a_message_given_twice_is_stored_once(engine: Engine) -> None:
    """A chat resent while its first escalation was being written repeats its messages."""
    agent, _ = make_agent(engine)
    first = NewMessage(source_ref="chat#0", body_text="Hello", sent_at=T0)
    repeat = NewMessage(source_ref="chat#0", body_text="Hello again", sent_at=T0)
    made = create(engine, replace(new_ticket(agent, "chat"), messages=[first, repeat]))
    with transaction(engine) as session:
        ticket = tickets.get(session, agent.id, made.ticket.id)
        assert ticket is not None
        assert tickets.append_messages(session, ticket, [repeat, repeat]) == 0
        bodies = [m.body_text for m in tickets.messages_of(session, ticket)]
        assert (bodies, ticket.message_count) == (["Hello"], 1)


def test_concurrent_creation_never_repeats_a_number(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    refs = [f"c{i}" for i in range(24)] + ["dup"] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda ref: create(engine, new_ticket(agent, ref)), refs))
    numbers = sorted({m.ticket.number for m in made})
    assert numbers == list(range(1, 26))  # 24 distinct refs + one "dup" ticket, no gaps
    assert sum(1 for m in made if m.created) == 25
    assert len({m.ticket.id for m in made if m.ticket.source_ref == "dup"}) == 1


def test_queries_are_scoped_to_the_agent(engine: Engine) -> None:
    owner, _ = make_agent(engine)
    stranger, _ = make_agent(engine)
    made = create(engine, new_ticket(owner, "mine"))
    with transaction(engine) as session:
        assert tickets.get(session, stranger.id, made.ticket.id) is None
        assert tickets.list_page(session, stranger.id, TicketFilter(), limit=10) == []
        assert tickets.get(session, owner.id, made.ticket.id) is not None


def test_list_page_filters_searches_and_pages(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    create(engine, new_ticket(agent, "a", title="Refund please", body="Order 100% broken"))
    create(engine, new_ticket(agent, "b", title="Login", body="cannot sign in"))
    create(engine, new_ticket(agent, "c", title="Invoice", body="wrong VAT"))
    with transaction(engine) as session:

        def titles(filters: TicketFilter, **kw: int) -> list[str]:
            page = tickets.list_page(
                session,
                agent.id,
                filters,
                limit=kw.get("limit", 10),
                before_number=kw.get("before"),
            )
            return [t.title for t in page]

        assert titles(TicketFilter()) == ["Invoice", "Login", "Refund please"]
        assert titles(TicketFilter(text="REFUND")) == ["Refund please"]
        assert titles(TicketFilter(text="100%")) == ["Refund please"]
        assert titles(TicketFilter(text="%")) == ["Refund please"]  # a literal %, not a wildcard
        assert titles(TicketFilter(text="sign")) == ["Login"]
        assert titles(TicketFilter(source="email")) == []
        assert titles(TicketFilter(status="open"), limit=2) == ["Invoice", "Login"]
        assert titles(TicketFilter(), before=2) == ["Refund please"]


def test_search_finds_text_in_messages(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    made = create(engine, new_ticket(agent, "m", title="Hello", body="first"))
    with transaction(engine) as session:
        ticket = tickets.get(session, agent.id, made.ticket.id)
        assert ticket is not None
        tickets.append_messages(
            session,
            ticket,
            [NewMessage(source_ref="m#1", body_text="the zebra escaped", sent_at=T0)],
        )
        found = tickets.list_page(session, agent.id, TicketFilter(text="zebra"), limit=5)
    assert [t.id for t in found] == [made.ticket.id]


@pytest.mark.parametrize("status", ["pending", "solved"])
def test_set_status_records_an_event(engine: Engine, status: str) -> None:
    agent, _ = make_agent(engine)
    made = create(engine, new_ticket(agent, "s"))
    with transaction(engine) as session:
        ticket = tickets.get(session, agent.id, made.ticket.id)
        assert ticket is not None
        tickets.set_status(session, ticket, TicketStatus(status))
        tickets.set_status(session, ticket, TicketStatus(status))  # unchanged: no second event
    with transaction(engine) as session:
        kinds = event_types(session, agent)
        ticket = tickets.get(session, agent.id, made.ticket.id)
    assert ticket is not None and ticket.status == status
    assert kinds == ["ticket.created", "ticket.status_changed"]

"""store.ledger on both databases: what each fetched email became, and the thread lookups."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, select

from domain.outcomes import Outcome, SkipReason, TicketSource
from store import ledger, mailboxes, tickets
from store.db import transaction
from store.ledger import NewInbound
from store.models import Agent, InboundMessage, Mailbox, new_id
from store.tickets import NewMessage, NewTicket
from tests.conftest import make_agent

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def inbound(provider_id: str, **changes: Any) -> NewInbound:
    made = NewInbound(
        provider_message_id=provider_id,
        provider_thread_id=f"thread-{provider_id}",
        internet_message_id=f"<{provider_id}@example.com>",
        from_address="bob@example.com",
        from_name="Bob",
        subject=f"Subject {provider_id}",
        received_at=T0,
        raw=f"Subject: {provider_id}\r\n\r\nbody\r\n".encode(),
    )
    return replace(made, **changes)


def as_utc(stamp: datetime) -> datetime:
    """For tests of something else: SQLite hands back naive UTC (pinned by the aware tests)."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def make_mailbox(engine: Engine, agent: Agent, address: str = "help@example.com") -> Mailbox:
    with transaction(engine) as session:
        mailbox, _ = mailboxes.connect(
            session,
            agent_id=agent.id,
            provider="gmail",
            address=address,
            credentials_encrypted="sealed",
        )
    return mailbox


def insert(engine: Engine, mailbox: Mailbox, *new: NewInbound) -> list[str]:
    """One `insert_new` call in its own transaction: the rows share one created_at."""
    with transaction(engine) as session:
        return ledger.insert_new(
            session, agent_id=mailbox.agent_id, mailbox_id=mailbox.id, rows=new
        )


def mark(
    engine: Engine,
    row_id: str,
    outcome: Outcome,
    ticket_id: str | None = None,
    skip_reason: SkipReason | None = None,
) -> None:
    with transaction(engine) as session:
        (row,) = ledger.rows(session, [row_id])
        ledger.mark(
            session,
            row,
            outcome,
            reason=f"because {outcome}",
            ticket_id=ticket_id,
            skip_reason=skip_reason,
        )


def count_rows(session: Session, mailbox: Mailbox) -> int:
    return session.exec(
        select(sa.func.count()).where(InboundMessage.mailbox_id == mailbox.id)
    ).one()


@pytest.fixture
def agent(engine: Engine) -> Agent:
    return make_agent(engine)[0]


@pytest.fixture
def mailbox(engine: Engine, agent: Agent) -> Mailbox:
    return make_mailbox(engine, agent)


# -- insert_new -------------------------------------------------------------------------


def test_insert_new_stores_each_field_and_returns_ids_in_order(
    engine: Engine, mailbox: Mailbox
) -> None:
    given = [inbound("a"), inbound("b", received_at=None, from_name=None)]
    ids = insert(engine, mailbox, *given)
    with transaction(engine) as session:
        a, b = ledger.rows(session, ids)
    assert [a.provider_message_id, b.provider_message_id] == ["a", "b"]
    assert (a.agent_id, a.mailbox_id, a.outcome) == (mailbox.agent_id, mailbox.id, "pending")
    assert (a.provider_thread_id, a.internet_message_id) == ("thread-a", "<a@example.com>")
    assert (a.from_address, a.from_name, a.subject) == ("bob@example.com", "Bob", "Subject a")
    assert a.raw == given[0].raw and a.size == len(given[0].raw)
    assert a.received_at is not None and as_utc(a.received_at) == T0
    assert (b.received_at, b.from_name) == (None, None)
    assert (a.reason, a.ticket_id, a.processed_at) == (None, None, None)


def test_insert_new_of_nothing_returns_nothing(engine: Engine, mailbox: Mailbox) -> None:
    assert insert(engine, mailbox) == []


def test_insert_new_again_returns_the_same_ids_in_the_given_order_and_adds_no_row(
    engine: Engine, mailbox: Mailbox
) -> None:
    first = insert(engine, mailbox, inbound("a"), inbound("b"), inbound("c"))
    # A retried activity: the same messages, in another order, one of them changed since.
    again = insert(engine, mailbox, inbound("c"), inbound("a", subject="Edited"), inbound("b"))
    assert again == [first[2], first[0], first[1]]
    # Half old, half new: old rows keep their ids, the new one gets its own.
    mixed = insert(engine, mailbox, inbound("d"), inbound("b"))
    assert mixed[1] == first[1] and mixed[0] not in first
    with transaction(engine) as session:
        assert count_rows(session, mailbox) == 4
        (a,) = ledger.rows(session, [first[0]])
        assert a.subject == "Subject a"  # the first write stands


def test_the_same_provider_id_in_another_mailbox_is_another_row(
    engine: Engine, agent: Agent, mailbox: Mailbox
) -> None:
    other = make_mailbox(engine, agent, "sales@example.com")
    mine = insert(engine, mailbox, inbound("a"))
    theirs = insert(engine, other, inbound("a"))
    assert mine != theirs


def test_insert_new_truncates_long_fields_to_their_columns(
    engine: Engine, mailbox: Mailbox
) -> None:
    message_id = "<" + "m" * 1200 + "@example.com>"
    address = "x" * 400 + "@example.com"
    long = inbound(
        "long",
        internet_message_id=message_id,
        from_address=address,
        from_name="N" * 300,
        subject="S" * 2000,
    )
    (row_id,) = insert(engine, mailbox, long)
    with transaction(engine) as session:
        (row,) = ledger.rows(session, [row_id])
    # The column widths: PostgreSQL would refuse anything longer.
    assert row.internet_message_id == message_id[:998]
    assert row.from_address == address[:320]
    assert row.from_name == "N" * 200
    assert row.subject == "S" * 998


def test_an_empty_message_id_is_stored_as_none(engine: Engine, mailbox: Mailbox) -> None:
    (row_id,) = insert(engine, mailbox, inbound("a", internet_message_id=""))
    with transaction(engine) as session:
        (row,) = ledger.rows(session, [row_id])
    assert row.internet_message_id is None


# -- rows, pending_ids, mark ------------------------------------------------------------


def test_rows_come_in_the_order_asked_and_filter_by_outcome(
    engine: Engine, mailbox: Mailbox
) -> None:
    a, b, c = insert(engine, mailbox, inbound("a"), inbound("b"), inbound("c"))
    mark(engine, b, Outcome.SKIPPED)
    with transaction(engine) as session:
        assert [r.id for r in ledger.rows(session, [c, a, b])] == [c, a, b]
        assert [r.id for r in ledger.rows(session, [c, new_id(), a])] == [c, a]
        assert [r.id for r in ledger.rows(session, [c, b, a], outcome=Outcome.PENDING)] == [c, a]
        assert [r.id for r in ledger.rows(session, [c, b, a], outcome=Outcome.SKIPPED)] == [b]
        assert ledger.rows(session, []) == []


def test_pending_ids_oldest_first_limited_and_of_this_mailbox_only(
    engine: Engine, agent: Agent, mailbox: Mailbox
) -> None:
    other = make_mailbox(engine, agent, "sales@example.com")
    # One insert per row: each batch has its own created_at.
    first, done, second, third = (insert(engine, mailbox, inbound(p))[0] for p in "abcd")
    insert(engine, other, inbound("z"))
    mark(engine, done, Outcome.TICKET_CREATED, ticket_id=new_id())
    with transaction(engine) as session:
        assert ledger.pending_ids(session, mailbox.id, 10) == [first, second, third]
        assert ledger.pending_ids(session, mailbox.id, 2) == [first, second]
        assert ledger.pending_ids(session, new_id(), 10) == []


def test_mark_records_outcome_reason_ticket_and_time(engine: Engine, mailbox: Mailbox) -> None:
    (row_id,) = insert(engine, mailbox, inbound("a"))
    ticket_id = new_id()
    before = datetime.now(UTC)
    mark(engine, row_id, Outcome.APPENDED, ticket_id=ticket_id)
    with transaction(engine) as session:
        (row,) = ledger.rows(session, [row_id])
    assert (row.outcome, row.reason, row.ticket_id, row.skip_reason) == (
        "appended",
        "because appended",
        ticket_id,
        None,
    )
    assert row.processed_at is not None
    assert before <= as_utc(row.processed_at) <= datetime.now(UTC)


def test_mark_again_replaces_what_was_there(engine: Engine, mailbox: Mailbox) -> None:
    (row_id,) = insert(engine, mailbox, inbound("a"))
    mark(engine, row_id, Outcome.SKIPPED, ticket_id=new_id(), skip_reason=SkipReason.FLOOD)
    with transaction(engine) as session:
        (row,) = ledger.rows(session, [row_id])
        assert (row.reason, row.skip_reason) == ("because skipped", "flood")
        ledger.mark(session, row, Outcome.FAILED)
    with transaction(engine) as session:
        (row,) = ledger.rows(session, [row_id])
    assert (row.outcome, row.reason, row.ticket_id, row.skip_reason) == (
        "failed",
        None,
        None,
        None,
    )


# -- page -------------------------------------------------------------------------------


def page_ids(
    session: Session,
    mailbox: Mailbox,
    limit: int,
    after: tuple[datetime, str] | None = None,
    agent_id: str | None = None,
) -> list[str]:
    found = ledger.page(session, agent_id or mailbox.agent_id, mailbox.id, limit=limit, after=after)
    return [r.id for r in found]


def test_page_is_newest_first_and_pages_across_equal_created_at(
    engine: Engine, mailbox: Mailbox
) -> None:
    older = insert(engine, mailbox, inbound("a"), inbound("b"), inbound("c"))
    newer = insert(engine, mailbox, inbound("d"), inbound("e"))
    # Within one batch (one created_at) the id breaks the tie, highest first.
    expected = sorted(newer, reverse=True) + sorted(older, reverse=True)
    with transaction(engine) as session:
        assert page_ids(session, mailbox, 10) == expected
        seen: list[str] = []
        after: tuple[datetime, str] | None = None
        for _ in range(4):
            found = ledger.page(session, mailbox.agent_id, mailbox.id, limit=2, after=after)
            seen += [r.id for r in found]
            if len(found) < 2:
                break
            after = (found[-1].created_at, found[-1].id)
        # Pages of two split the first batch and the second: nothing lost or repeated.
        assert seen == expected


def test_page_leaves_the_raw_message_unloaded(engine: Engine, mailbox: Mailbox) -> None:
    insert(engine, mailbox, inbound("a"))
    with transaction(engine) as session:
        (row,) = ledger.page(session, mailbox.agent_id, mailbox.id, limit=10)
        assert "raw" not in row.__dict__  # deferred: a list page never reads the MIME
        assert row.raw.startswith(b"Subject: a")  # but it is there when asked for


def test_page_is_scoped_to_the_agent(engine: Engine, mailbox: Mailbox) -> None:
    stranger, _ = make_agent(engine)
    theirs = make_mailbox(engine, stranger)
    insert(engine, mailbox, inbound("a"))
    their_ids = insert(engine, theirs, inbound("a"))
    with transaction(engine) as session:
        # B naming A's mailbox sees nothing; A naming B's sees nothing either.
        assert page_ids(session, mailbox, 10, agent_id=stranger.id) == []
        assert page_ids(session, theirs, 10, agent_id=mailbox.agent_id) == []
        assert page_ids(session, theirs, 10) == their_ids


# -- thread lookups ---------------------------------------------------------------------


def test_tickets_for_provider_threads_earliest_ticket_wins(
    engine: Engine, agent: Agent, mailbox: Mailbox
) -> None:
    other = make_mailbox(engine, agent, "sales@example.com")
    first, later = new_id(), new_id()
    (t1_old,) = insert(engine, mailbox, inbound("1", provider_thread_id="t1"))
    (t1_new,) = insert(engine, mailbox, inbound("2", provider_thread_id="t1"))
    # In t2 the earliest email was skipped: the earliest one that made a ticket counts.
    (t2_skip,) = insert(engine, mailbox, inbound("3", provider_thread_id="t2"))
    (t2_made,) = insert(engine, mailbox, inbound("4", provider_thread_id="t2"))
    insert(engine, mailbox, inbound("5", provider_thread_id="t3"))  # pending: no ticket yet
    (elsewhere,) = insert(engine, other, inbound("6", provider_thread_id="t4"))
    # Marked in the opposite order to their arrival: the arrival order decides.
    mark(engine, t1_new, Outcome.TICKET_CREATED, ticket_id=later)
    mark(engine, t1_old, Outcome.TICKET_CREATED, ticket_id=first)
    mark(engine, t2_skip, Outcome.SKIPPED)
    mark(engine, t2_made, Outcome.TICKET_CREATED, ticket_id=later)
    mark(engine, elsewhere, Outcome.TICKET_CREATED, ticket_id=first)
    with transaction(engine) as session:
        found = ledger.tickets_for_provider_threads(
            session, mailbox.id, ["t1", "t2", "t3", "t4", "t1", "nope"]
        )
        assert found == {"t1": first, "t2": later}
        assert ledger.tickets_for_provider_threads(session, mailbox.id, []) == {}
        assert ledger.tickets_for_provider_threads(session, other.id, ["t4"]) == {"t4": first}


def test_tickets_for_message_ids_is_scoped_to_the_agent(
    engine: Engine, agent: Agent, mailbox: Mailbox
) -> None:
    second_box = make_mailbox(engine, agent, "sales@example.com")
    stranger, _ = make_agent(engine)
    theirs = make_mailbox(engine, stranger)
    ticket = new_id()
    (mine,) = insert(engine, mailbox, inbound("a", internet_message_id="<q1@example.com>"))
    (across,) = insert(engine, second_box, inbound("b", internet_message_id="<q2@example.com>"))
    insert(engine, mailbox, inbound("c", internet_message_id="<unmarked@example.com>"))
    (foreign,) = insert(engine, theirs, inbound("d", internet_message_id="<q3@example.com>"))
    for row_id in (mine, across, foreign):
        mark(engine, row_id, Outcome.TICKET_CREATED, ticket_id=ticket)
    wanted = ["<q1@example.com>", "<q2@example.com>", "<q3@example.com>"]
    wanted += ["<unmarked@example.com>", "<q1@example.com>"]
    with transaction(engine) as session:
        found = ledger.tickets_for_message_ids(session, agent.id, wanted)
        # Any of the agent's mailboxes counts; another agent's mail never does.
        assert found == {"<q1@example.com>": ticket, "<q2@example.com>": ticket}
        assert ledger.tickets_for_message_ids(session, agent.id, []) == {}


def test_tickets_by_number_names_the_people_taking_part(engine: Engine, agent: Agent) -> None:
    stranger, _ = make_agent(engine)

    def create(
        owner: Agent, ref: str, requester: str | None, authors: Sequence[str | None]
    ) -> tuple[int, str]:
        messages = [
            NewMessage(source_ref=f"{ref}#{i}", body_text="hi", sent_at=T0, author_email=a)
            for i, a in enumerate(authors)
        ]
        new = NewTicket(
            agent_id=owner.id,
            source=TicketSource.EMAIL,
            source_ref=ref,
            title="Printer",
            description="It jams",
            requester_email=requester,
            requester_name=None,
            messages=messages,
        )
        with transaction(engine) as session:
            made = tickets.create_ticket(session, new).ticket
        return made.number, made.id

    one, one_id = create(
        agent, "one", "Ann@Example.COM", ["ann@example.com", "Bob@Example.com", None]
    )
    two, two_id = create(agent, "two", None, ["CAROL@example.com"])
    theirs, theirs_id = create(stranger, "three", "eve@example.com", [])
    assert theirs == one == 1  # numbers are per agent: the lookup must not mix them up
    with transaction(engine) as session:
        found = ledger.tickets_by_number(session, agent.id, [one, two, 999, one])
        assert ledger.tickets_by_number(session, stranger.id, [1]) == {
            1: (theirs_id, {"eve@example.com"})
        }
        assert ledger.tickets_by_number(session, agent.id, []) == {}
    assert found == {
        one: (one_id, {"ann@example.com", "bob@example.com"}),
        two: (two_id, {"carol@example.com"}),
    }


# -- datetimes come back aware ----------------------------------------------------------


def _read_rows(session: Session, mailbox: Mailbox, ids: list[str]) -> list[datetime | None]:
    (row,) = ledger.rows(session, ids)
    return [row.created_at, row.received_at, row.processed_at]


def _read_page(session: Session, mailbox: Mailbox, ids: list[str]) -> list[datetime | None]:
    (row,) = ledger.page(session, mailbox.agent_id, mailbox.id, limit=1)
    return [row.created_at, row.received_at, row.processed_at]


@pytest.mark.parametrize("read", [_read_rows, _read_page], ids=["rows", "page"])
def test_datetimes_come_back_timezone_aware(
    engine: Engine,
    mailbox: Mailbox,
    read: Callable[[Session, Mailbox, list[str]], list[datetime | None]],
) -> None:
    ids = insert(engine, mailbox, inbound("a"))
    mark(engine, ids[0], Outcome.SKIPPED)
    with transaction(engine) as session:
        stamps = read(session, mailbox, ids)
    assert [s.utcoffset() if s is not None else "missing" for s in stamps] == [timedelta(0)] * 3
